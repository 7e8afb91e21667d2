"""Shell-command classification: from a command line alone, what it does and to which environment.

Used by the Claude Code adapter (Bash tool calls) and by ``railbook gate`` (PreToolUse hook), so the
incident of DESIGN.md, an ``ALTER TABLE`` sent to the production host, is recognised before and
after it runs. Recognised programs (each segment of ``a && b | c; d`` is classified, and the most
consequential one names the command):

* ``psql`` / ``pgcli`` / ``mysql`` / ``mariadb`` / ``mycli``: connection URIs
  (``postgresql://user:pw@host:5432/db``), libpq conninfo (``"host=h dbname=d"``), ``-h``/``--host``,
  ``-d``/``-D``, ``PGHOST=``; SQL from ``-c``/``-e``/heredocs/pipes → ``sql:AlterTable``,
  ``sql:DropTable``, ``sql:Truncate``, ``sql:Delete``, … on ``db://<host>/<database>``, environment
  from ``config.environment_for_host``. ``dropdb``/``createdb`` too.
* ``kubectl`` / ``oc``: ``--context`` → cluster → ``config.environment_for_cluster``; verb + kind →
  ``k8s:<verb>:<resource>`` (``exec`` → ``k8s:create:pods/exec``, as the audit log spells it).
* ``terraform`` / ``tofu``: ``destroy`` and ``apply -destroy`` → ``terraform:Destroy``; ``apply``,
  ``plan``, ``state rm``, … The environment is a configured environment *name* found as a path
  component of ``-chdir``, in a ``-var-file`` name or in ``TF_WORKSPACE``.
* ``aws``: ``aws iam attach-role-policy`` → ``iam:AttachRolePolicy`` (CloudTrail's spelling);
  ``aws s3 rm|rb|cp`` → ``s3:DeleteObject|DeleteBucket|PutObject``; account from ARNs in the
  arguments → ``config.environment_for_account``.
* ``git push``: ``git:Push`` or ``git:ForcePush`` (``-f``, ``--force*``, ``+refspec``), ``--delete`` →
  ``git:DeleteBranch``; protected branches from config.
* ``rm``: ``file:Delete`` (recursive or not).
* anything else: ``shell:Exec``.

Unknown stays unknown: no host, context or account in the command means environment ``unknown``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from core.config import Config
from core.event import UNKNOWN, Resource, sha256_hex
from ingest._common import clip, environment_for_branch
from ingest.redact import redact_text

__all__ = ["CommandFacts", "classify_command", "classify_sql", "redact_command"]

logger = logging.getLogger(__name__)

_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "|&", ";;", "(", ")", "\n", ";&", "&;"})
_WRAPPERS = frozenset({"sudo", "env", "time", "nohup", "exec", "command", "nice", "timeout", "doas", "xargs"})
_DB_CLIENTS = frozenset({"psql", "pgcli", "mysql", "mariadb", "mycli"})
_MYSQLISH = frozenset({"mysql", "mariadb", "mycli"})


@dataclass(frozen=True)
class CommandFacts:
    """What a shell command does, as far as the command line alone tells."""

    action: str
    """Namespaced verb: ``sql:AlterTable``, ``k8s:delete:deployments``, ``terraform:Destroy``, …"""
    resource: Resource
    """Target: ``db://host/db``, ``k8s://context/ns/kind/name``, ``repo@branch``, ``cmd://<program>``."""
    digest: str
    """SHA-256 (hex) of the exact command text (UTF-8): what an approval with a digest must match."""
    redacted: str
    """The command with passwords, tokens, keys and card numbers replaced (safe to store and show)."""
    program: str | None = None
    """The program of the deciding segment (``psql``, ``kubectl``, …), ``None`` for an empty command."""
    attributes: dict[str, str] = field(default_factory=dict, hash=False)
    """Facts worth keeping: ``db.host``, ``sql.table``, ``kube.context``, ``git.force``, ``aws.profile``, …"""

    @property
    def data_classes(self) -> tuple[str, ...]:
        return self.resource.data_classes


@dataclass(frozen=True)
class _Guess:
    rank: int
    action: str
    resource_id: str
    resource_type: str
    environment: str = UNKNOWN
    account: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


# --- redaction ------------------------------------------------------------------------------------

_MYSQL_PW = re.compile(
    r"""(\b(?:mysql|mariadb|mycli|mysqldump|mysqladmin)\b[^\n|;&]*?\s)-p(?!\s)('[^']*'|"[^"]*"|[^\s'"]+)"""
)
_PASSWORD_FLAG = re.compile(r"""(--password\s+|\bsshpass\s+-p\s*)('[^']*'|"[^"]*"|[^\s'"]+)""")


def redact_command(command: str) -> tuple[str, tuple[str, ...]]:
    """Redact a command line: what ``redact_text`` knows plus ``mysql -pSECRET`` and ``--password X``."""
    text, found = redact_text(command)
    for rx in (_MYSQL_PW, _PASSWORD_FLAG):
        text, n = rx.subn(
            lambda m: (
                m.group(1)
                + ("-p" if m.group(0)[len(m.group(1)) :].startswith("-p") else "")
                + "[REDACTED:password]"
                if not m.group(2).startswith("[REDACTED")
                else m.group(0)
            ),
            text,
        )
        if n and "[REDACTED:password]" in text:
            found.add("secret")
    return text, tuple(sorted(found))


# --- tokenising -----------------------------------------------------------------------------------


def _tokens(command: str) -> list[str]:
    lex = shlex.shlex(command, posix=True, punctuation_chars=";&|()\n")
    lex.whitespace = " \t\r"
    lex.whitespace_split = True
    try:
        return list(lex)
    except ValueError:
        # Unbalanced quotes: fall back to whitespace words rather than give up on the command.
        return re.findall(r"[^\s;&|]+|[;&|\n]+", command)


def _segments(tokens: list[str]) -> list[list[str]]:
    segs: list[list[str]] = []
    cur: list[str] = []
    for tok in tokens:
        if tok in _OPERATORS or (tok and set(tok) <= set(";&|()\n")):
            if cur:
                segs.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        segs.append(cur)
    return segs


_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _strip_prefix(seg: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``VAR=value`` assignments and wrappers (``sudo -u x``, ``env``, ``timeout 5``) removed."""
    env: dict[str, str] = {}
    i = 0
    while i < len(seg):
        tok = seg[i]
        if _ASSIGN.match(tok):
            k, _, v = tok.partition("=")
            env[k] = v
            i += 1
        elif os.path.basename(tok) in _WRAPPERS:
            i += 1
            while i < len(seg) and seg[i].startswith("-"):
                # sudo -u user / timeout -s KILL: skip the flag and, if it takes one, its value
                flag = seg[i]
                i += 1
                if flag in ("-u", "-g", "-s", "-k", "-n", "-C", "--user", "--signal") and i < len(seg):
                    i += 1
            if (
                os.path.basename(seg[i - 1] if i else "") == "timeout"
                and i < len(seg)
                and seg[i][:1].isdigit()
            ):
                i += 1
        else:
            break
    return env, seg[i:]


def _opt(args: list[str], i: int, names: tuple[str, ...]) -> tuple[str | None, int]:
    """If ``args[i]`` is one of ``names`` (``-h X``, ``-hX``, ``--host=X``), its value and the next index."""
    a = args[i]
    for n in names:
        if a == n:
            return (args[i + 1] if i + 1 < len(args) else None), i + 2
        if n.startswith("--") and a.startswith(n + "="):
            return a[len(n) + 1 :], i + 1
        if len(n) == 2 and not n.startswith("--") and a.startswith(n) and len(a) > 2:
            return a[2:], i + 1
    return None, i


# --- SQL ------------------------------------------------------------------------------------------

_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_SQL_RANK = {
    "Drop": 100,
    "Truncate": 95,
    "Alter": 90,
    "Rename": 88,
    "Delete": 85,
    "Grant": 80,
    "Revoke": 80,
    "Merge": 72,
    "Update": 70,
    "Create": 60,
    "Insert": 50,
    "Copy": 45,
    "Vacuum": 30,
    "Select": 10,
}
_SQL_OBJECTS = (
    "MATERIALIZED VIEW",
    "FOREIGN TABLE",
    "TABLE",
    "INDEX",
    "VIEW",
    "DATABASE",
    "SCHEMA",
    "SEQUENCE",
    "FUNCTION",
    "PROCEDURE",
    "TRIGGER",
    "TYPE",
    "ROLE",
    "USER",
    "EXTENSION",
    "POLICY",
    "COLUMN",
)
_STMT = re.compile(
    r"^\s*(?P<verb>ALTER|CREATE|DROP|TRUNCATE|DELETE|UPDATE|INSERT|MERGE|SELECT|WITH|SHOW|EXPLAIN|GRANT"
    r"|REVOKE|COPY|RENAME|VACUUM|REPLACE|UPSERT)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_IDENT = r"""((?:"[^"]+"|`[^`]+`|[A-Za-z_][\w$]*)(?:\.(?:"[^"]+"|`[^`]+`|[A-Za-z_][\w$]*))?)"""
_MODIFIERS = re.compile(
    r"^\s*(?:OR\s+REPLACE\s+|UNIQUE\s+|TEMP(?:ORARY)?\s+|UNLOGGED\s+|GLOBAL\s+|LOCAL\s+|CONCURRENTLY\s+)*",
    re.IGNORECASE,
)


def classify_sql(sql: str) -> list[tuple[str, str | None]]:
    """SQL text → ``[(verb, table or None), …]`` per statement, e.g. ``[("AlterTable", "accounts")]``."""
    out: list[tuple[str, str | None]] = []
    text = _SQL_COMMENT.sub(" ", sql)
    for stmt in text.split(";"):
        m = _STMT.match(stmt)
        if not m:
            continue
        verb = m.group("verb").upper()
        rest = m.group("rest")
        if verb in ("WITH", "SHOW", "EXPLAIN", "SELECT"):
            inner = re.search(r"\b(DELETE|UPDATE|INSERT)\b", rest, re.IGNORECASE) if verb == "WITH" else None
            if inner:
                out.append((inner.group(1).capitalize(), None))
            else:
                out.append(("Select", None))
            continue
        if verb in ("ALTER", "CREATE", "DROP"):
            rest2 = _MODIFIERS.sub("", rest)
            obj = next((o for o in _SQL_OBJECTS if re.match(rf"\s*{o}\b", rest2, re.IGNORECASE)), None)
            noun = "".join(w.capitalize() for w in obj.split()) if obj else "Object"
            table = None
            if obj in ("TABLE", "FOREIGN TABLE"):
                tm = re.match(
                    rf"\s*{obj}\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:ONLY\s+)?{_IDENT}", rest2, re.IGNORECASE
                )
                table = tm.group(1) if tm else None
            out.append((verb.capitalize() + noun, table))
            continue
        pattern = {
            "TRUNCATE": rf"\s*(?:TABLE\s+)?(?:ONLY\s+)?{_IDENT}",
            "DELETE": rf"\s*FROM\s+(?:ONLY\s+)?{_IDENT}",
            "UPDATE": rf"\s*(?:ONLY\s+)?{_IDENT}",
            "INSERT": rf"\s*(?:IGNORE\s+)?INTO\s+{_IDENT}",
            "REPLACE": rf"\s*INTO\s+{_IDENT}",
            "MERGE": rf"\s*INTO\s+{_IDENT}",
            "COPY": rf"\s*{_IDENT}",
            "RENAME": rf"\s*TABLE\s+{_IDENT}",
        }.get(verb)
        tm = re.match(pattern, rest, re.IGNORECASE) if pattern else None
        name = {"REPLACE": "Insert", "UPSERT": "Insert", "RENAME": "RenameTable"}.get(verb, verb.capitalize())
        out.append((name, tm.group(1).strip('"`') if tm else None))
    return out


def _sql_rank(verb: str) -> int:
    return next((r for prefix, r in _SQL_RANK.items() if verb.startswith(prefix)), 40)


def _db_target(value: str) -> dict[str, str]:
    """Host, database and user from a connection URI or a libpq conninfo string."""
    out: dict[str, str] = {}
    if "://" in value:
        try:
            u = urlsplit(value)
            if u.hostname:
                out["host"] = u.hostname.lower()
            if u.path and u.path != "/":
                out["db"] = unquote(u.path.lstrip("/"))
            if u.username:
                out["user"] = unquote(u.username)
            q = parse_qs(u.query)
            if "host" in q and q["host"][0] and not q["host"][0].startswith("/"):
                out["host"] = q["host"][0].lower()
            if "dbname" in q:
                out["db"] = q["dbname"][0]
        except ValueError:
            pass
    elif "=" in value:
        for key, val in re.findall(r"(\w+)\s*=\s*('[^']*'|\S+)", value):
            val = val.strip("'")
            if key in ("host", "hostaddr") and "host" not in out:
                out["host"] = val.lower()
            elif key == "dbname":
                out["db"] = val
            elif key == "user":
                out["user"] = val
    if "host" in out:
        out["host"] = out["host"].split(",")[0]
    return out


def _classify_db(prog: str, args: list[str], env: dict[str, str], whole: str, config: Config) -> _Guess:
    mysqlish = prog in _MYSQLISH
    target: dict[str, str] = {}
    sql_parts: list[str] = []
    files: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        host, j = _opt(args, i, ("-h", "--host"))
        if j != i:
            if host:
                target["host"] = host.lower()
            i = j
            continue
        db, j = _opt(args, i, ("-D", "--database") if mysqlish else ("-d", "--dbname"))
        if j != i:
            if db:
                target.update(_db_target(db) if ("://" in db or "=" in db) else {"db": db})
            i = j
            continue
        cmd, j = _opt(args, i, ("-e", "--execute") if mysqlish else ("-c", "--command"))
        if j != i:
            if cmd:
                sql_parts.append(cmd)
            i = j
            continue
        f, j = _opt(args, i, ("-f", "--file") if not mysqlish else ("--source",))
        if j != i:
            if f:
                files.append(f)
            i = j
            continue
        user, j = _opt(args, i, ("-u", "--user") if mysqlish else ("-U", "--username"))
        if j != i:
            if user:
                target.setdefault("user", user)
            i = j
            continue
        port, j = _opt(args, i, ("-P", "--port") if mysqlish else ("-p", "--port"))
        if j != i:
            i = j
            continue
        if a.startswith("-"):
            i += 1
            continue
        positional.append(a)
        i += 1
    for p in positional:
        if "://" in p or ("=" in p and not mysqlish):
            for k, v in _db_target(p).items():
                target.setdefault(k, v)
        elif "db" not in target:
            target["db"] = p
    for var, key in (("PGHOST", "host"), ("PGDATABASE", "db"), ("MYSQL_HOST", "host")):
        if env.get(var):
            target.setdefault(key, env[var].lower() if key == "host" else env[var])
    statements = classify_sql(" ; ".join(sql_parts)) if sql_parts else []
    if not statements and not files:
        # A heredoc or a pipe (`echo 'DROP …' | psql`): the SQL is elsewhere in the command line.
        statements = classify_sql(_heredoc_or_echo(whole))
    host = target.get("host")
    db = target.get("db", "")
    attributes = {"db.client": prog}
    if host:
        attributes["db.host"] = host
    if db:
        attributes["db.name"] = clip(db, 256)
    if target.get("user"):
        attributes["db.user"] = clip(target["user"], 256)
    if statements:
        verb, table = max(statements, key=lambda s: _sql_rank(s[0]))
        rank = _sql_rank(verb)
        attributes["sql.statements"] = clip(",".join(s[0] for s in statements), 512)
        if table:
            attributes["sql.table"] = clip(table, 256)
    elif files:
        verb, rank = "RunScript", 40
        attributes["sql.file"] = clip(files[0], 512)
    else:
        verb, rank = "Connect", 5
    environment = config.environment_for_host(host or "localhost")
    return _Guess(
        rank + 100,
        f"sql:{verb}",
        f"db://{host or 'localhost'}/{db}",
        "database",
        environment,
        None,
        attributes,
    )


def _heredoc_or_echo(command: str) -> str:
    m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?[^\n]*\n(.*?)(?:\n\s*\1\s*(?:\n|$)|\Z)", command, re.DOTALL)
    if m:
        return m.group(2)
    m = re.search(r"""\b(?:echo|printf)\s+(?:-[a-z]+\s+)?(['"])(.*?)\1\s*\|""", command, re.DOTALL)
    if m:
        return m.group(2)
    m = re.search(r"<<<\s*(['\"])(.*?)\1", command, re.DOTALL)
    return m.group(2) if m else ""


def _classify_dropdb(prog: str, args: list[str], config: Config) -> _Guess:
    host = None
    db = ""
    i = 0
    while i < len(args):
        h, j = _opt(args, i, ("-h", "--host"))
        if j != i:
            host, i = (h.lower() if h else None), j
            continue
        if args[i] in ("-U", "--username", "-p", "--port", "--maintenance-db"):
            i += 2
            continue
        if not args[i].startswith("-"):
            db = args[i]
        i += 1
    verb = "DropDatabase" if prog == "dropdb" else "CreateDatabase"
    attributes = {"db.client": prog, **({"db.host": host} if host else {})}
    return _Guess(
        _sql_rank(verb) + 100,
        f"sql:{verb}",
        f"db://{host or 'localhost'}/{db}",
        "database",
        config.environment_for_host(host or "localhost"),
        None,
        attributes,
    )


# --- kubectl --------------------------------------------------------------------------------------

_K8S_KINDS = {
    "po": "pods",
    "pod": "pods",
    "deploy": "deployments",
    "deployment": "deployments",
    "svc": "services",
    "service": "services",
    "ns": "namespaces",
    "namespace": "namespaces",
    "cm": "configmaps",
    "configmap": "configmaps",
    "secret": "secrets",
    "sa": "serviceaccounts",
    "serviceaccount": "serviceaccounts",
    "no": "nodes",
    "node": "nodes",
    "ds": "daemonsets",
    "daemonset": "daemonsets",
    "sts": "statefulsets",
    "statefulset": "statefulsets",
    "rs": "replicasets",
    "replicaset": "replicasets",
    "ing": "ingresses",
    "ingress": "ingresses",
    "pv": "persistentvolumes",
    "pvc": "persistentvolumeclaims",
    "job": "jobs",
    "cj": "cronjobs",
    "cronjob": "cronjobs",
    "crd": "customresourcedefinitions",
    "role": "roles",
    "rolebinding": "rolebindings",
    "clusterrole": "clusterroles",
    "clusterrolebinding": "clusterrolebindings",
    "netpol": "networkpolicies",
    "networkpolicy": "networkpolicies",
    "hpa": "horizontalpodautoscalers",
}
_K8S_VERBS = {
    "get": ("get", None, 20),
    "describe": ("get", None, 20),
    "delete": ("delete", None, 90),
    "apply": ("apply", None, 70),
    "create": ("create", None, 70),
    "replace": ("update", None, 70),
    "edit": ("update", None, 70),
    "patch": ("patch", None, 70),
    "label": ("patch", None, 50),
    "annotate": ("patch", None, 50),
    "scale": ("update", "scale", 70),
    "rollout": ("patch", None, 70),
    "set": ("patch", None, 70),
    "exec": ("create", "exec", 85),
    "cp": ("create", "exec", 80),
    "attach": ("create", "attach", 85),
    "port-forward": ("create", "portforward", 60),
    "logs": ("get", "log", 20),
    "drain": ("patch", None, 75),
    "cordon": ("patch", None, 60),
    "uncordon": ("patch", None, 60),
    "taint": ("patch", None, 60),
    "debug": ("create", "ephemeralcontainers", 85),
}
_POD_VERBS = frozenset({"exec", "cp", "attach", "port-forward", "logs", "debug"})


def _k8s_kind(text: str) -> str:
    kind = text.lower().split(".")[0]
    if kind in _K8S_KINDS:
        return _K8S_KINDS[kind]
    return kind if kind.endswith("s") else kind + "s"


def _classify_kubectl(args: list[str], config: Config) -> _Guess:
    context = cluster = namespace = None
    files: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        for names, key in (
            (("--context",), "context"),
            (("--cluster",), "cluster"),
            (("-n", "--namespace"), "namespace"),
            (("-f", "--filename"), "file"),
        ):
            val, j = _opt(args, i, names)
            if j != i:
                if key == "context":
                    context = val
                elif key == "cluster":
                    cluster = val
                elif key == "namespace":
                    namespace = val
                elif val:
                    files.append(val)
                i = j
                break
        else:
            if a in (
                "--kubeconfig",
                "--user",
                "-c",
                "--container",
                "-l",
                "--selector",
                "-o",
                "--output",
                "--replicas",
                "--type",
                "-p",
                "--patch",
                "--image",
            ):
                i += 2
            elif a.startswith("-"):
                i += 1
            else:
                positional.append(a)
                i += 1
    verb_word = positional[0] if positional else ""
    verb, sub, rank = _K8S_VERBS.get(verb_word, (verb_word or "unknown", None, 30))
    rest = positional[1:]
    if verb_word == "rollout" and rest:
        rest = rest[1:]  # rollout restart|undo|status <kind>
    kind = name = None
    if verb_word in _POD_VERBS:
        kind = "pods"
        if rest:
            target = rest[0].split(":")[0] if verb_word == "cp" else rest[0]
            if "/" in target:
                k, _, target = target.partition("/")
                kind = _k8s_kind(k)
            name = target
    elif rest:
        if "/" in rest[0]:
            k, _, name = rest[0].partition("/")
            kind = _k8s_kind(k)
        else:
            kind = _k8s_kind(rest[0].split(",")[0])
            name = rest[1] if len(rest) > 1 else None
    elif files:
        kind = "manifests"
    if verb_word == "config":
        verb, kind, rank = "config", "kubeconfig", 5
    kind = kind or "unknown"
    resource_type = f"{kind}/{sub}" if sub else kind
    cluster_name = context or cluster
    environment = config.environment_for_cluster(cluster_name) if cluster_name else UNKNOWN
    if verb == "get" and kind == "secrets":
        rank = 60
    attributes = {"k8s.verb": verb_word}
    if context:
        attributes["kube.context"] = context
    if cluster:
        attributes["kube.cluster"] = cluster
    if namespace:
        attributes["k8s.namespace"] = namespace
    if files:
        attributes["k8s.file"] = clip(files[0], 512)
    rid = f"k8s://{cluster_name or 'current-context'}/{namespace or '_'}/{kind}/{name or '*'}"
    return _Guess(
        rank, f"k8s:{verb}:{resource_type}", rid, f"k8s:{kind}", environment, cluster_name, attributes
    )


# --- terraform ------------------------------------------------------------------------------------


def _env_from_path(config: Config, *texts: str | None) -> str:
    names = set(config.environments)
    for text in texts:
        if not text:
            continue
        for part in re.split(r"[/\\.\-_=]", text):
            if part in names:
                return part
    return UNKNOWN


def _classify_terraform(prog: str, args: list[str], env: dict[str, str], config: Config) -> _Guess:
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
    return _Guess(
        rank,
        f"terraform:{verb}",
        f"terraform://{chdir or '.'}",
        "terraform-stack",
        environment,
        None,
        attributes,
    )


# --- aws ------------------------------------------------------------------------------------------

_AWS_SERVICE = {
    "s3api": "s3",
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "configservice": "config",
    "stepfunctions": "states",
    "cognito-idp": "cognito-idp",
}
_AWS_S3 = {
    "rm": "DeleteObject",
    "rb": "DeleteBucket",
    "mb": "CreateBucket",
    "ls": "ListObjects",
    "presign": "GetObject",
}
_AWS_TARGET_FLAGS = (
    "--bucket",
    "--role-name",
    "--user-name",
    "--group-name",
    "--table-name",
    "--function-name",
    "--db-instance-identifier",
    "--db-cluster-identifier",
    "--cluster-name",
    "--cluster",
    "--secret-id",
    "--trail-name",
    "--name",
    "--stack-name",
    "--key-id",
    "--instance-ids",
    "--instance-id",
    "--group-id",
    "--snapshot-id",
    "--image-id",
    "--repository-name",
    "--queue-url",
    "--topic-arn",
    "--log-group-name",
    "--policy-arn",
    "--role-arn",
    "--resource-arn",
    "--arn",
)
_DESTRUCTIVE_VERB = re.compile(
    r"^(Delete|Terminate|Remove|Stop|Disable|Deregister|Revoke|Detach|Leave|Purge|Cancel)"
)
_WRITE_VERB = re.compile(
    r"^(Attach|Put|Update|Modify|Create|Set|Add|Authorize|Run|Start|Enable|Register|Reset|Rotate|Restore"
    r"|Tag|Untag|Replace|Associate|Import|Invoke|Send|Publish|Copy|Upload|Change)"
)
_ARN_ACCOUNT = re.compile(r"\barn:aws[\w-]*:[\w-]*:[\w-]*:(\d{12}):")


def _classify_aws(args: list[str], config: Config) -> _Guess:
    profile = region = None
    positional: list[str] = []
    named: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            key, eq, val = a.partition("=")
            if eq:
                named[key] = val
                i += 1
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                named[key] = args[i + 1]
                i += 2
            else:
                named[key] = ""
                i += 1
        else:
            positional.append(a)
            i += 1
    profile = named.get("--profile")
    region = named.get("--region")
    service = positional[0] if positional else "unknown"
    op_word = positional[1] if len(positional) > 1 else ""
    target: str | None = None
    rtype = f"aws:{_AWS_SERVICE.get(service, service)}"
    if service == "s3":
        uris = [p for p in positional[2:] if p.startswith("s3://")]
        if op_word in ("cp", "mv", "sync"):
            dest = positional[-1] if len(positional) > 3 else ""
            verb = "PutObject" if dest.startswith("s3://") else "GetObject"
            if op_word == "mv":
                verb = "DeleteObject" if not dest.startswith("s3://") else "PutObject"
        else:
            verb = _AWS_S3.get(op_word, "".join(w.capitalize() for w in op_word.split("-")) or "Unknown")
        if uris:
            bucket = uris[-1 if verb == "PutObject" else 0][5:].split("/")[0]
            target = f"arn:aws:s3:::{bucket}"
            rtype = "s3-bucket"
        svc = "s3"
    else:
        svc = _AWS_SERVICE.get(service, service)
        verb = "".join(w.capitalize() for w in op_word.split("-")) or "Unknown"
        for flag in _AWS_TARGET_FLAGS:
            if named.get(flag):
                target = named[flag].split()[0]
                break
    accounts = [m.group(1) for v in [*named.values(), *positional] for m in _ARN_ACCOUNT.finditer(v)]
    account = accounts[0] if accounts else None
    environment = config.environment_for_account(account) if account else UNKNOWN
    attributes: dict[str, str] = {}
    if profile:
        attributes["aws.profile"] = profile
        if environment == UNKNOWN and profile in config.environments:
            environment = profile
            attributes["environment.from"] = "aws-profile"
    if region:
        attributes["aws.region"] = region
    rank = 90 if _DESTRUCTIVE_VERB.match(verb) else 70 if _WRITE_VERB.match(verb) else 25
    rid = (
        target
        if target and target.startswith("arn:")
        else (
            f"aws://{account or 'unknown'}/{svc}/{target}"
            if target
            else f"aws://{account or 'unknown'}/{svc}"
        )
    )
    return _Guess(rank, f"{svc}:{verb}", clip(rid, 1024), rtype, environment, account, attributes)


# --- git, rm --------------------------------------------------------------------------------------


def _classify_git(args: list[str], config: Config) -> _Guess:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    sub = args[i] if i < len(args) else ""
    rest = args[i + 1 :]
    if sub != "push":
        rank = 15 if sub in ("commit", "merge", "rebase", "tag") else 10
        if sub == "reset" and "--hard" in rest:
            return _Guess(40, "git:ResetHard", "git://worktree", "git-worktree")
        verb = "".join(w.capitalize() for w in sub.split("-")) or "Run"
        return _Guess(rank, f"git:{verb}", "git://worktree", "git-worktree")
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
    return _Guess(
        rank,
        f"git:{verb}",
        f"{remote}@{branch or 'HEAD'}",
        "git-branch",
        environment_for_branch(config, branch),
        remote,
        attributes,
    )


def _classify_rm(args: list[str]) -> _Guess:
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
    return _Guess(
        60 if recursive else 30,
        "file:Delete",
        clip(f"file://{target}", 1024),
        "directory" if recursive else "file",
        UNKNOWN,
        None,
        attributes,
    )


# --- entry point ----------------------------------------------------------------------------------


def _classify_segment(seg: list[str], whole: str, config: Config) -> tuple[_Guess, str | None]:
    env, words = _strip_prefix(seg)
    if not words:
        return _Guess(0, "shell:Exec", "cmd://", "command"), None
    prog = os.path.basename(words[0])
    args = words[1:]
    if prog in _DB_CLIENTS:
        return _classify_db(prog, args, env, whole, config), prog
    if prog in ("dropdb", "createdb"):
        return _classify_dropdb(prog, args, config), prog
    if prog in ("kubectl", "oc"):
        return _classify_kubectl(args, config), prog
    if prog in ("terraform", "tofu", "terragrunt"):
        return _classify_terraform(prog, args, env, config), prog
    if prog == "aws":
        return _classify_aws(args, config), prog
    if prog == "git":
        return _classify_git(args, config), prog
    if prog == "rm":
        return _classify_rm(args), prog
    return _Guess(0, "shell:Exec", clip(f"cmd://{prog}", 1024), "command"), prog


def classify_command(command: str, config: Config) -> CommandFacts:
    """Classify a shell command line; never raises on any input.

    Each segment of a compound command is classified; the highest-ranked (most consequential)
    names the action and resource, and every segment's action is listed in ``shell.actions``.
    """
    digest = sha256_hex(command.encode("utf-8", "surrogatepass"))
    redacted, classes = redact_command(command)
    guesses: list[tuple[_Guess, str | None]] = []
    try:
        for seg in _segments(_tokens(command))[:64]:
            guesses.append(_classify_segment(seg, command, config))
    except Exception:  # noqa: BLE001 - a classifier bug must not lose the event; it becomes shell:Exec
        logger.exception("classify_command failed on a command of %d characters", len(command))
        guesses = []
    if not guesses:
        guesses = [(_Guess(0, "shell:Exec", "cmd://", "command"), None)]
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
