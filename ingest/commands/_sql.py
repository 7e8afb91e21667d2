"""SQL clients: ``psql``/``pgcli``/``mysql``/``mariadb``/``mycli`` (and ``dropdb``/``createdb``) → ``sql:*``
on ``db://<host>/<database>``; statements recognised by their leading keywords (no SQL parser)."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, unquote, urlsplit

from core.config import Config
from ingest._common import clip
from ingest.commands._facts import Guess
from ingest.commands._shell import opt

__all__ = ["DB_CLIENTS", "classify_db", "classify_dropdb", "classify_sql"]

logger = logging.getLogger(__name__)


DB_CLIENTS = frozenset({"psql", "pgcli", "mysql", "mariadb", "mycli"})
_MYSQLISH = frozenset({"mysql", "mariadb", "mycli"})

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


def classify_db(prog: str, args: list[str], env: dict[str, str], whole: str, config: Config) -> Guess:
    mysqlish = prog in _MYSQLISH
    target: dict[str, str] = {}
    sql_parts: list[str] = []
    files: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        host, j = opt(args, i, ("-h", "--host"))
        if j != i:
            if host:
                target["host"] = host.lower()
            i = j
            continue
        db, j = opt(args, i, ("-D", "--database") if mysqlish else ("-d", "--dbname"))
        if j != i:
            if db:
                target.update(_db_target(db) if ("://" in db or "=" in db) else {"db": db})
            i = j
            continue
        cmd, j = opt(args, i, ("-e", "--execute") if mysqlish else ("-c", "--command"))
        if j != i:
            if cmd:
                sql_parts.append(cmd)
            i = j
            continue
        f, j = opt(args, i, ("-f", "--file") if not mysqlish else ("--source",))
        if j != i:
            if f:
                files.append(f)
            i = j
            continue
        user, j = opt(args, i, ("-u", "--user") if mysqlish else ("-U", "--username"))
        if j != i:
            if user:
                target.setdefault("user", user)
            i = j
            continue
        port, j = opt(args, i, ("-P", "--port") if mysqlish else ("-p", "--port"))
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
    return Guess(
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


def classify_dropdb(prog: str, args: list[str], config: Config) -> Guess:
    host = None
    db = ""
    i = 0
    while i < len(args):
        h, j = opt(args, i, ("-h", "--host"))
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
    return Guess(
        _sql_rank(verb) + 100,
        f"sql:{verb}",
        f"db://{host or 'localhost'}/{db}",
        "database",
        config.environment_for_host(host or "localhost"),
        None,
        attributes,
    )
