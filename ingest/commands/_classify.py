"""The entry point: classify every segment of a command line and keep the most consequential."""

from __future__ import annotations

import logging
import os

from core.config import Config
from core.event import Resource, sha256_hex
from ingest._common import clip
from ingest.commands._cloud import classify_aws
from ingest.commands._facts import CommandFacts, Guess
from ingest.commands._kubectl import classify_kubectl
from ingest.commands._redact import redact_command
from ingest.commands._shell import segments, strip_prefix, tokens
from ingest.commands._sql import DB_CLIENTS, classify_db, classify_dropdb
from ingest.commands._workspace import classify_git, classify_rm, classify_terraform

__all__ = ["classify_command"]

logger = logging.getLogger(__name__)


def _classify_segment(seg: list[str], whole: str, config: Config) -> tuple[Guess, str | None]:
    env, words = strip_prefix(seg)
    if not words:
        return Guess(0, "shell:Exec", "cmd://", "command"), None
    prog = os.path.basename(words[0])
    args = words[1:]
    if prog in DB_CLIENTS:
        return classify_db(prog, args, env, whole, config), prog
    if prog in ("dropdb", "createdb"):
        return classify_dropdb(prog, args, config), prog
    if prog in ("kubectl", "oc"):
        return classify_kubectl(args, config), prog
    if prog in ("terraform", "tofu", "terragrunt"):
        return classify_terraform(prog, args, env, config), prog
    if prog == "aws":
        return classify_aws(args, config), prog
    if prog == "git":
        return classify_git(args, config), prog
    if prog == "rm":
        return classify_rm(args), prog
    return Guess(0, "shell:Exec", clip(f"cmd://{prog}", 1024), "command"), prog


def classify_command(command: str, config: Config) -> CommandFacts:
    """Classify a shell command line; never raises on any input.

    Each segment of a compound command is classified; the highest-ranked (most consequential)
    names the action and resource, and every segment's action is listed in ``shell.actions``.
    """
    digest = sha256_hex(command.encode("utf-8", "surrogatepass"))
    redacted, classes = redact_command(command)
    guesses: list[tuple[Guess, str | None]] = []
    try:
        for seg in segments(tokens(command))[:64]:
            guesses.append(_classify_segment(seg, command, config))
    except Exception:  # noqa: BLE001 - a classifier bug must not lose the event; it becomes shell:Exec
        logger.exception("classify_command failed on a command of %d characters", len(command))
        guesses = []
    if not guesses:
        guesses = [(Guess(0, "shell:Exec", "cmd://", "command"), None)]
    best, prog = max(guesses, key=lambda g: g[0].rank)
    attributes = dict(best.attributes)
    if len(guesses) > 1:
        attributes["shell.actions"] = clip(",".join(g.action for g, _ in guesses), 512)
    resource = Resource(
        id=best.resource_id or "cmd://",
        type=best.resource_type,
        environment=best.environment,
        account=best.account,
        data_classes=classes,
    )
    return CommandFacts(best.action, resource, digest, redacted, prog, attributes)
