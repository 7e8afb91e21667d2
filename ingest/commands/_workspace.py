"""Tools acting on code and infrastructure state: ``git push`` (force, delete, protected branches),
``terraform``/``tofu`` (destroy, apply, state), ``rm``."""

from __future__ import annotations

import logging
import re

from core.config import Config
from core.event import UNKNOWN
from ingest._common import clip, environment_for_branch
from ingest.commands._facts import Guess

__all__ = ["classify_git", "classify_rm", "classify_terraform"]

logger = logging.getLogger(__name__)


def _env_from_path(config: Config, *texts: str | None) -> str:
    names = set(config.environments)
    for text in texts:
        if not text:
            continue
        for part in re.split(r"[/\\.\-_=]", text):
            if part in names:
                return part
    return UNKNOWN


def classify_terraform(prog: str, args: list[str], env: dict[str, str], config: Config) -> Guess:
    chdir = None
    var_files: list[str] = []
    positional: list[str] = []
    destroy = False
    targets: list[str] = []
    for a in args:
        if a.startswith("-chdir="):
            chdir = a.split("=", 1)[1]
        elif a.startswith(("-var-file=", "--var-file=")):
            var_files.append(a.split("=", 1)[1])
        elif a in ("-destroy", "--destroy"):
            destroy = True
        elif a.startswith(("-target=", "--target=")):
            targets.append(a.split("=", 1)[1])
        elif not a.startswith("-"):
            positional.append(a)
    sub = positional[0] if positional else ""
    if sub == "destroy" or (sub == "apply" and destroy):
        verb, rank = "Destroy", 95
    elif sub == "apply":
        verb, rank = "Apply", 75
    elif sub == "state" and len(positional) > 1:
        verb = "State" + positional[1].capitalize()
        rank = 70 if positional[1] in ("rm", "mv", "push", "replace-provider") else 20
    elif sub == "import":
        verb, rank = "Import", 60
    elif sub in ("taint", "untaint"):
        verb, rank = sub.capitalize(), 60
    elif sub == "workspace" and len(positional) > 1 and positional[1] == "delete":
        verb, rank = "WorkspaceDelete", 80
    else:
        verb, rank = (sub.capitalize() or "Run"), 15
        if sub == "plan" and destroy:
            verb = "PlanDestroy"
    workspace = env.get("TF_WORKSPACE")
    environment = _env_from_path(config, workspace, chdir, *var_files)
    attributes = {"terraform.subcommand": sub}
    if chdir:
        attributes["terraform.chdir"] = clip(chdir, 512)
    if var_files:
        attributes["terraform.var_file"] = clip(",".join(var_files), 512)
    if targets:
        attributes["terraform.target"] = clip(",".join(targets), 512)
    if workspace:
        attributes["terraform.workspace"] = workspace
    if environment != UNKNOWN:
        attributes["environment.from"] = "terraform-path"
    return Guess(
        rank,
        f"terraform:{verb}",
        f"terraform://{chdir or '.'}",
        "terraform-stack",
        environment,
        None,
        attributes,
    )


def classify_git(args: list[str], config: Config) -> Guess:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    sub = args[i] if i < len(args) else ""
    rest = args[i + 1 :]
    if sub != "push":
        rank = 15 if sub in ("commit", "merge", "rebase", "tag") else 10
        if sub == "reset" and "--hard" in rest:
            return Guess(40, "git:ResetHard", "git://worktree", "git-worktree")
        verb = "".join(w.capitalize() for w in sub.split("-")) or "Run"
        return Guess(rank, f"git:{verb}", "git://worktree", "git-worktree")
    force = delete = False
    positional: list[str] = []
    for a in rest:
        if a in ("-f", "--force") or a.startswith(("--force-with-lease", "--force-if-includes")):
            force = True
        elif a in ("-d", "--delete"):
            delete = True
        elif a.startswith("-"):
            if a.startswith("-") and not a.startswith("--") and "f" in a[1:]:
                force = True
        else:
            positional.append(a)
    remote = positional[0] if positional else "origin"
    branch = None
    if len(positional) > 1:
        spec = positional[1]
        if spec.startswith("+"):
            force = True
            spec = spec[1:]
        if spec.startswith(":"):
            delete = True
        branch = spec.split(":")[-1] or None
        if branch:
            branch = branch.removeprefix("refs/heads/")
    protected = config.is_protected_branch(branch)
    verb = "DeleteBranch" if delete else "ForcePush" if force else "Push"
    rank = 90 if (force or delete) and protected else 85 if protected else 80 if force or delete else 50
    attributes = {
        "git.remote": remote,
        "git.force": "true" if force else "false",
        "git.protected_branch": "true" if protected else "false",
    }
    if branch:
        attributes["git.branch"] = branch
    return Guess(
        rank,
        f"git:{verb}",
        f"{remote}@{branch or 'HEAD'}",
        "git-branch",
        environment_for_branch(config, branch),
        remote,
        attributes,
    )


def classify_rm(args: list[str]) -> Guess:
    recursive = force = False
    paths: list[str] = []
    for a in args:
        if a in ("--recursive",) or (a.startswith("-") and not a.startswith("--") and ("r" in a or "R" in a)):
            recursive = True
        if a == "--force" or (a.startswith("-") and not a.startswith("--") and "f" in a):
            force = True
        if not a.startswith("-"):
            paths.append(a)
    attributes = {
        "file.recursive": "true" if recursive else "false",
        "file.force": "true" if force else "false",
    }
    if len(paths) > 1:
        attributes["file.paths"] = clip(" ".join(paths), 1024)
    target = paths[0] if paths else ""
    return Guess(
        60 if recursive else 30,
        "file:Delete",
        clip(f"file://{target}", 1024),
        "directory" if recursive else "file",
        UNKNOWN,
        None,
        attributes,
    )
