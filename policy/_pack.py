"""Loading a policy pack: Cedar schema files, policy files and catalog data, validated as a whole.

A pack is a directory holding ``*.cedarschema`` (read together, in name order), ``*.cedar``
(policies, in name order) and an optional ``catalog.json`` (refinements and the placeholders for
unknown actions). Sub-directories (such as ``tests/``) are not part of the pack.

Everything that can be wrong with a pack is found here, at load time, and raised as a
``PolicyLoadError`` naming the file, the line and the problem: Railbook refuses to run with a
pack that does not parse, does not validate against its schema (cedarpy's validator), or has a
``forbid`` without the annotations a decision needs to explain itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cedarpy

from core.errors import PolicyLoadError
from policy._decision import SEVERITIES, Reason

__all__ = ["DEFAULT_PACK_DIR", "Pack", "PolicyInfo", "attr_names", "load_pack", "split_policies"]

logger = logging.getLogger(__name__)

#: the default pack, shipped inside the package
DEFAULT_PACK_DIR = Path(__file__).parent / "pack"

_DEFAULT_CATALOG: dict[str, Any] = {
    "unknown": {"destructive": "unknown:destructive", "other": "unknown:other"},
    "refinements": [],
}


@dataclass(frozen=True)
class PolicyInfo:
    """One policy of the pack, with where it came from."""

    policy_id: str
    """Its id in the policy set: the ``@id`` annotation, else ``<file>:<n>``."""
    file: str
    """File name inside the pack directory."""
    line: int
    """1-based line where the policy starts (its first annotation)."""
    effect: str
    """``permit`` or ``forbid``."""
    annotations: dict[str, str]
    """All its annotations (``id``, ``rail``, ``severity``, ``title``, ``remediation``, ``approvable``)."""

    @property
    def approvable(self) -> bool:
        """A valid approval lifts this policy (``@approvable("true")``): gate mode answers ``ask``."""
        return self.annotations.get("approvable", "").lower() == "true"

    def reason(self) -> Reason:
        a = self.annotations
        return Reason(
            policy_id=self.policy_id,
            rail=int(a["rail"]),
            severity=a["severity"],
            title=a["title"],
            remediation=a.get("remediation"),
        )


@dataclass(frozen=True)
class Pack:
    """A loaded, validated pack: the parsed Cedar handles plus what the engine needs to explain."""

    directory: Path
    version: str
    """SHA-256 (hex) over every schema, policy and catalog file (names and bytes)."""
    schema: cedarpy.Schema
    policy_set: cedarpy.PolicySet
    base_entities: cedarpy.Entities
    """The action entities (with their group hierarchy) derived from the schema."""
    policies: dict[str, PolicyInfo]
    actions: dict[str, frozenset[str]]
    """Every concrete action (names with a colon) → all of its groups, transitively."""
    catalog: dict[str, Any]
    files: tuple[str, ...]
    referenced: frozenset[str] | None = None
    """Every attribute name the policies read (``.attr``, ``["attr"]``, ``has attr``): an entity
    attribute not named here cannot change a decision, so the hot path may leave it out.
    ``None``: unknown, send every attribute."""
    static: dict[str, Any] = field(default_factory=dict)
    """Every policy in Cedar's JSON form (EST), by policy id: what ``policy_set`` was built from."""
    names_entities: bool = True
    """A policy names an entity other than an action (``Agent::"x"``, ``Resource::"x"``), in its
    scope or a condition: its answers may depend on entity ids, or on other entities than the
    request's own."""


# --- splitting policy text ------------------------------------------------------------------------


def split_policies(text: str) -> list[tuple[int, str]]:
    """Split Cedar policy text into ``(start line, policy text)`` at top-level semicolons.

    A policy ends at the first ``;`` outside a string or a ``//`` comment (Cedar has no other
    use for it). Used to put a line number on cedarpy's positional ``policyN`` ids.
    """
    out: list[tuple[int, str]] = []
    i, n, line = 0, len(text), 1
    start, start_line = 0, None
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == '"':
            if start_line is None:
                start_line = line
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif c == ";":
            out.append((start_line or line, text[start : i + 1]))
            start, start_line = i + 1, None
        elif not c.isspace() and start_line is None:
            start_line = line
        i += 1
    if start_line is not None and text[start:].strip():
        out.append((start_line, text[start:]))
    return out


# --- locating cedarpy's location-free messages -------------------------------------------------------

_TOKEN = re.compile(r"`([^`]+)`|:\s*([A-Za-z_][\w:]*)\s*$")


def _locate(texts: list[tuple[str, str]], message: str) -> tuple[str, int] | None:
    """Best effort: the first line of any file containing the token a cedarpy message quotes."""
    tokens = [a or b for a, b in _TOKEN.findall(message)]
    for tok in tokens:
        # the last path segment is what the source spells (`Resource::environmnt` → environmnt)
        for cand in (tok, tok.split("::")[-1]):
            rx = re.compile(r"(?<![\w\"])" + re.escape(cand) + r"(?![\w])")
            for name, text in texts:
                for no, ln in enumerate(text.splitlines(), 1):
                    if rx.search(ln.split("//", 1)[0]):
                        return name, no
    if "end of input" in message and texts:
        name, text = texts[-1]
        return name, max(1, len(text.splitlines()))
    return None


def _where(loc: tuple[str, int] | None, directory: Path) -> str:
    if loc is None:
        return str(directory)
    return f"{directory / loc[0]}:{loc[1]}"


# --- loading ------------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError(f"{path}: cannot be read: {exc}") from exc


def _version(files: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in sorted(files):
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def _load_schema(directory: Path, texts: list[tuple[str, str]]) -> cedarpy.Schema:
    if not texts:
        raise PolicyLoadError(
            f"{directory}: no *.cedarschema file; a pack needs a Cedar schema "
            f"(copy {DEFAULT_PACK_DIR}/railbook.cedarschema as a start)"
        )
    try:
        return cedarpy.Schema.from_str("\n".join(t for _, t in texts))
    except ValueError as exc:
        loc = _locate(texts, str(exc))
        raise PolicyLoadError(
            f"{_where(loc, directory)}: the Cedar schema is invalid: {exc}; fix the schema file"
        ) from exc


def _actions(schema: cedarpy.Schema) -> tuple[cedarpy.Entities, dict[str, frozenset[str]]]:
    base = cedarpy.Entities.from_json_str("[]", schema)
    parents: dict[str, set[str]] = {}
    for ent in json.loads(str(base)):
        uid = ent["uid"]
        if uid["type"] == "Action":
            parents[uid["id"]] = {p["id"] for p in ent.get("parents", ()) if p.get("type") == "Action"}
    actions: dict[str, frozenset[str]] = {}
    for name in parents:
        if ":" not in name:
            continue
        # every ancestor, not only the direct groups: the engine sends an action entity with all
        # of them (a Cedar ``in`` test reads the request action's ancestors, nothing else)
        seen: set[str] = set()
        todo = list(parents[name])
        while todo:
            group = todo.pop()
            if group not in seen:
                seen.add(group)
                todo.extend(parents.get(group, ()))
        actions[name] = frozenset(seen)
    return base, actions


def _annotation_problem(info: PolicyInfo) -> str | None:
    a = info.annotations
    if info.effect != "forbid":
        return None
    if not a.get("id"):
        return 'a forbid needs @id("...") (a stable name for the violation class)'
    rail = a.get("rail")
    if rail not in ("1", "2", "3", "4"):
        return f'@rail must be "1".."4", got {rail!r}'
    if a.get("severity") not in SEVERITIES:
        return f"@severity must be one of {', '.join(SEVERITIES)}, got {a.get('severity')!r}"
    if not a.get("title"):
        return '@title("...") is missing: one line saying what was violated'
    if "approvable" in a and a["approvable"].lower() not in ("true", "false"):
        return f'@approvable must be "true" or "false", got {a["approvable"]!r}'
    return None


def _load_policies(
    directory: Path, files: list[tuple[str, str]], schema: cedarpy.Schema
) -> tuple[dict[str, Any], dict[str, PolicyInfo]]:
    static: dict[str, Any] = {}
    infos: dict[str, PolicyInfo] = {}
    for name, text in files:
        chunks = split_policies(text)
        try:
            est = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as exc:
            # find the chunk that fails, for a line number
            bad = next((c for c in chunks if not _parses(c[1])), None)
            line = bad[0] if bad else 1
            raise PolicyLoadError(
                f"{directory / name}:{line}: policy does not parse: {exc}; fix the Cedar syntax"
            ) from exc
        result = cedarpy.validate_policies(text, schema)
        if not result.validation_passed:
            problems = []
            for err in result.errors:
                line = _chunk_line(chunks, err.policy_id)
                problems.append(f"{directory / name}:{line}: {err.error}")
            raise PolicyLoadError(
                "policies do not validate against the schema:\n  "
                + "\n  ".join(problems)
                + "\n(fix the policy, or declare the attribute/action in a *.cedarschema file)"
            )
        for pos, (_key, pol) in enumerate(sorted(est.get("staticPolicies", {}).items(), key=_pos_key)):
            annotations = {k: str(v) for k, v in (pol.get("annotations") or {}).items()}
            pid = annotations.get("id") or f"{name}:{pos}"
            line = chunks[pos][0] if pos < len(chunks) else 1
            info = PolicyInfo(pid, name, line, pol["effect"], annotations)
            problem = _annotation_problem(info)
            if problem:
                raise PolicyLoadError(f"{directory / name}:{line}: {problem}")
            if pid in infos:
                other = infos[pid]
                raise PolicyLoadError(
                    f"{directory / name}:{line}: @id({pid!r}) is already used at "
                    f"{other.file}:{other.line}; policy ids must be unique"
                )
            infos[pid] = info
            static[pid] = pol
        if est.get("templates"):
            raise PolicyLoadError(f"{directory / name}: templates are not supported in a policy pack")
    return static, infos


def _pos_key(item: tuple[str, Any]) -> int:
    m = re.fullmatch(r"policy(\d+)", item[0])
    return int(m.group(1)) if m else 0


def _parses(text: str) -> bool:
    try:
        cedarpy.policies_to_json_str(text)
    except ValueError:
        return False
    return True


def _chunk_line(chunks: list[tuple[int, str]], policy_id: str) -> int:
    m = re.fullmatch(r"policy(\d+)", policy_id or "")
    if m and int(m.group(1)) < len(chunks):
        return chunks[int(m.group(1))][0]
    return 1


def _load_catalog(directory: Path, actions: dict[str, frozenset[str]]) -> tuple[dict[str, Any], bytes]:
    path = directory / "catalog.json"
    if not path.exists():
        data, raw = dict(_DEFAULT_CATALOG), b""
    else:
        raw = path.read_bytes()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PolicyLoadError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise PolicyLoadError(f"{path}: expected a JSON object, got {type(data).__name__}")
        data = {**_DEFAULT_CATALOG, **data}
    unknown = data.get("unknown")
    if not isinstance(unknown, dict) or set(unknown) != {"destructive", "other"}:
        raise PolicyLoadError(f'{path}: "unknown" must be {{"destructive": ACTION, "other": ACTION}}')
    for key, action in unknown.items():
        if action not in actions:
            raise PolicyLoadError(
                f'{path}: "unknown.{key}" names action {action!r}, which no *.cedarschema declares; '
                f'declare it (e.g. action "{action}" in [Destructive] appliesTo {{...}};)'
            )
    refinements = data.get("refinements")
    if not isinstance(refinements, list):
        raise PolicyLoadError(f'{path}: "refinements" must be a list')
    for i, r in enumerate(refinements):
        keys = {"action", "attribute", "equals", "as"}
        if not isinstance(r, dict) or not keys <= set(r) or not all(isinstance(r[k], str) for k in keys):
            raise PolicyLoadError(
                f'{path}: refinements[{i}] must have string "action", "attribute", "equals" and "as"'
            )
        if r["as"] not in actions:
            raise PolicyLoadError(
                f"{path}: refinements[{i}] maps to {r['as']!r}, which no *.cedarschema declares"
            )
    return data, raw


def load_pack(directory: Path) -> Pack:
    """Load and validate the pack in ``directory``; raises ``PolicyLoadError`` naming file and line."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyLoadError(f"{directory}: policy pack directory does not exist (expected *.cedar files)")
    schema_files = [(p.name, _read(p)) for p in sorted(directory.glob("*.cedarschema"))]
    policy_files = [(p.name, _read(p)) for p in sorted(directory.glob("*.cedar"))]
    if not policy_files:
        raise PolicyLoadError(f"{directory}: no *.cedar policy files")
    schema = _load_schema(directory, schema_files)
    base, actions = _actions(schema)
    static, infos = _load_policies(directory, policy_files, schema)
    catalog, catalog_raw = _load_catalog(directory, actions)
    try:
        policy_set = cedarpy.PolicySet.from_json_str(
            json.dumps({"staticPolicies": static, "templates": {}, "templateLinks": []})
        )
    except ValueError as exc:  # pragma: no cover - each file parsed above
        raise PolicyLoadError(f"{directory}: policy set cannot be built: {exc}") from exc
    files = [(n, t.encode()) for n, t in schema_files + policy_files]
    if catalog_raw:
        files.append(("catalog.json", catalog_raw))
    version = _version(files)
    referenced = frozenset(attr_names(static))
    names_entities = _names_entities(static)
    logger.info("policy pack loaded dir=%s policies=%d version=%s", directory, len(infos), version[:12])
    return Pack(
        directory=directory,
        version=version,
        schema=schema,
        policy_set=policy_set,
        base_entities=base,
        policies=infos,
        actions=actions,
        catalog=catalog,
        files=tuple(n for n, _ in files),
        referenced=referenced,
        static=static,
        names_entities=names_entities,
    )


def attr_names(est: Any) -> set[str]:
    """Every ``attr`` value in the policies' JSON form: the attribute names they can read.

    Cedar reads an attribute only by naming it (``.``, ``[]`` and ``has`` all become an
    ``{"attr": NAME}`` node); there is no way to enumerate or compare an entity's attributes
    without naming one, so an entity attribute missing from this set cannot change a decision.
    """
    out: set[str] = set()
    stack = [est]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "attr" and isinstance(value, str):
                    out.add(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _names_entities(est: Any) -> bool:
    """Whether a policy names an entity other than an action: ``{"__entity": E}`` in a condition,
    ``{"entity": E}`` / ``{"entities": [E]}`` in a scope, E with a type other than ``Action``."""
    stack = [est]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("__entity", "entity"):
                ent = node.get(key)
                if isinstance(ent, dict) and ent.get("type") != "Action":
                    return True
            ents = node.get("entities")
            if isinstance(ents, list) and any(
                isinstance(e, dict) and e.get("type") != "Action" for e in ents
            ):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False
