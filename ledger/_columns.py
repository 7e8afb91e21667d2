"""The indexed columns of ``entries`` as SQL over the entry bytes (internal, no I/O).

One definition, two users: the writer derives every indexed column inside DuckDB from the entry
bytes it hashed (``INSERT … SELECT`` over ``insert_entries_sql``), and ``railbook verify``
recomputes them with the very same expressions (``column_flags_sql``) and reports a stored column
that differs. So a column is what the signed bytes say by construction, and verification of the
columns can never drift from how they were written. Deriving them in DuckDB also takes the
per-row Python work of building ~20 Arrow columns off the append path (one JSON parse per row
in C++, on the insert thread, without the GIL).

Small appends (the gate's single entry) bind the same values as parameters instead
(``insert_rows_sql`` + ``row_values``): planning the extraction query costs more than the insert of
one row. A hypothesis test requires both ways to store identical rows.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BASE_COLUMNS",
    "INDEXED_COLUMNS",
    "column_flags_sql",
    "insert_entries_sql",
    "insert_entries_values_sql",
    "insert_rows_sql",
    "row_values",
]

#: the columns the writer supplies; every other column is derived from ``entry``
BASE_COLUMNS = ("seq", "entry", "leaf_hash", "chain_hash")

#: where the entry bytes say each value (``_``-prefixed: inputs of a derived column) and how to cast it
_FIELDS: dict[str, tuple[str, str | None]] = {
    "event_id": ("$.event.event_id", None),
    "occurred_at": ("$.event.occurred_at", "TIMESTAMPTZ"),
    "ingested_at": ("$.ingested_at", "TIMESTAMPTZ"),
    "source": ("$.event.source", None),
    "actor_id": ("$.event.actor.id", None),
    "actor_kind": ("$.event.actor.kind", None),
    "on_behalf_of": ("$.event.actor.on_behalf_of", None),
    "credential": ("$.event.actor.credential", None),
    "action": ("$.event.action", None),
    "resource_id": ("$.event.resource.id", None),
    "resource_type": ("$.event.resource.type", None),
    "environment": ("$.event.resource.environment", None),
    "outcome": ("$.decision.outcome", None),
    "mode": ("$.decision.mode", None),
    "severity": ("$.decision.severity", None),
    "policy_version": ("$.decision.policy_version", None),
    '"commit"': ("$.event.change.commit", None),
    "pull_request": ("$.event.change.pull_request", None),
    "task": ("$.event.change.task", None),
    "approval_used": ("$.decision.approval.request_id", None),
    "rails": ("$.decision.rails", "JSON"),
    "_approval_request": ("$.event.approval.request_id", None),
    "_attr_request": ("$.event.attributes.request_id", None),
    "_reasons": ("$.decision.reasons", None),
}

#: one JSON parse per row: every path above, extracted as text into the list ``v``
_EXTRACT = "json_extract_string(decode(entry), [{}]) AS v".format(
    ", ".join(f"'{p}'" for p, _ in _FIELDS.values())
)


def _expressions() -> dict[str, str]:
    pos = {name: i + 1 for i, name in enumerate(_FIELDS)}
    out: dict[str, str] = {}
    for name, (_, cast) in _FIELDS.items():
        if name.startswith("_"):
            continue
        v = f"v[{pos[name]}]"
        if cast == "TIMESTAMPTZ":
            out[name] = f"CAST({v} AS TIMESTAMPTZ)"
        elif cast == "JSON":
            out[name] = f"CAST(CAST({v} AS JSON) AS INTEGER[])"
        else:
            out[name] = v
    # an approval event names its request; other events may carry one as an attribute
    out["request_id"] = f"coalesce(v[{pos['_approval_request']}], v[{pos['_attr_request']}])"
    # the reasons array is extracted as JSON text and only that small document is parsed again
    out["policies"] = f"CAST(json_extract_string(v[{pos['_reasons']}], '$[*].policy_id') AS VARCHAR[])"
    return out


#: indexed column (quoted where SQL needs it) -> its expression over ``v``
INDEXED_COLUMNS: dict[str, str] = _expressions()


def insert_entries_sql(source: str) -> str:
    """``INSERT INTO entries`` from a relation ``source`` with the ``BASE_COLUMNS``."""
    return (
        f"INSERT INTO entries ({', '.join(BASE_COLUMNS)}, {', '.join(INDEXED_COLUMNS)}) "
        f"SELECT {', '.join(BASE_COLUMNS)}, {', '.join(INDEXED_COLUMNS.values())} "
        f"FROM (SELECT *, {_EXTRACT} FROM {source})"
    )


def insert_entries_values_sql(rows: int) -> str:
    """``insert_entries_sql`` over ``rows`` parameter rows ``(seq, entry, leaf_hash, chain_hash)``."""
    values = ", ".join(["(?::BIGINT, ?::BLOB, ?::BLOB, ?::BLOB)"] * rows)
    return insert_entries_sql(f"(VALUES {values}) AS _rows({', '.join(BASE_COLUMNS)})")


#: parameters of ``insert_rows_sql`` that need a cast: the timestamps are the entry's own RFC 3339
#: text, cast exactly as ``INDEXED_COLUMNS`` casts the text it extracts; lists get their element
#: type (an empty Python list has none). Text, bytes and ints bind as the columns' own types.
_ROW_CASTS = {
    "occurred_at": "TIMESTAMPTZ",
    "ingested_at": "TIMESTAMPTZ",
    "rails": "INTEGER[]",
    "policies": "VARCHAR[]",
}

#: one parameter row of ``insert_rows_sql``: the ``BASE_COLUMNS``, then ``INDEXED_COLUMNS`` in order
_ROW = "(?, ?, ?, ?, {})".format(
    ", ".join(f"?::{_ROW_CASTS[name]}" if name in _ROW_CASTS else "?" for name in INDEXED_COLUMNS)
)


def insert_rows_sql(rows: int) -> str:
    """``INSERT INTO entries`` of ``rows`` parameter rows that carry every column: the base columns
    and the ``row_values`` of the entry.

    For a few entries (the gate appends one per request) this is about half the cost of
    ``insert_entries_values_sql``: DuckDB plans the ~1.4 KB extraction query on every call, which
    costs more than extracting the columns of one entry in Python. ``row_values`` must give exactly
    what ``INDEXED_COLUMNS`` derives from the same bytes (a hypothesis test inserts both ways and
    compares every column), and returns ``None`` whenever a value's JSON type differs from what the
    SQL text extraction would turn into the same column value — the caller then derives in SQL.
    """
    return (
        f"INSERT INTO entries ({', '.join(BASE_COLUMNS)}, {', '.join(INDEXED_COLUMNS)}) VALUES "
        + ", ".join([_ROW] * rows)
    )


def _text(v: Any) -> bool:
    return v is None or type(v) is str


def row_values(event: dict[str, Any], decision: dict[str, Any], ingested_at: str) -> list[Any] | None:
    """The ``INDEXED_COLUMNS`` of an entry as parameters of ``insert_rows_sql``, read from the very
    dicts its entry bytes were encoded from (``event.to_dict()``, ``decision.to_dict()``); ``None``
    if one is not plain text where the SQL derivation extracts text (then ``json_extract_string``
    would render a number, boolean or object as JSON text: the caller derives in SQL instead)."""
    actor, resource, change = event["actor"], event["resource"], event["change"]
    approval, used = event.get("approval"), decision.get("approval")
    request_id = approval.get("request_id") if approval else None
    if request_id is None:
        request_id = (event.get("attributes") or {}).get("request_id")
    rails, reasons = decision.get("rails"), decision.get("reasons")
    policies = None if reasons is None else [r.get("policy_id") for r in reasons]
    values = [
        event.get("event_id"),
        event.get("occurred_at"),
        ingested_at,
        event.get("source"),
        actor.get("id"),
        actor.get("kind"),
        actor.get("on_behalf_of"),
        actor.get("credential"),
        event.get("action"),
        resource.get("id"),
        resource.get("type"),
        resource.get("environment"),
        decision.get("outcome"),
        decision.get("mode"),
        decision.get("severity"),
        decision.get("policy_version"),
        change.get("commit"),
        change.get("pull_request"),
        change.get("task"),
        used.get("request_id") if used else None,
        rails,
        request_id,
        policies,
    ]
    if not all(_text(v) for k, v in enumerate(values) if k != _RAILS and k != _POLICIES):
        return None
    if rails is not None and not all(type(x) is int for x in rails):
        return None
    if policies is not None and not all(type(x) is str for x in policies):
        return None
    return values


_RAILS = list(INDEXED_COLUMNS).index("rails")
_POLICIES = list(INDEXED_COLUMNS).index("policies")
assert list(INDEXED_COLUMNS) == [
    "event_id", "occurred_at", "ingested_at", "source", "actor_id", "actor_kind", "on_behalf_of",
    "credential", "action", "resource_id", "resource_type", "environment", "outcome", "mode",
    "severity", "policy_version", '"commit"', "pull_request", "task", "approval_used", "rails",
    "request_id", "policies",
], "row_values lists the columns in INDEXED_COLUMNS order"  # fmt: skip


def column_flags_sql(rel: str) -> tuple[str, list[str]]:
    """One query over ``rel``: the lowest seq whose stored indexed columns differ from what its entry
    bytes say (one ``c<i>`` flag per column, named by the returned list), or no row."""
    names = list(INDEXED_COLUMNS)
    flags = ", ".join(
        f"({col} IS DISTINCT FROM {expr}) AS c{i}" for i, (col, expr) in enumerate(INDEXED_COLUMNS.items())
    )
    sql = (
        f"SELECT seq, * EXCLUDE (seq) FROM (SELECT seq, {flags} FROM (SELECT *, {_EXTRACT} FROM {rel})) "
        f"WHERE {' OR '.join(f'c{i}' for i in range(len(names)))} ORDER BY seq LIMIT 1"
    )
    return sql, names
