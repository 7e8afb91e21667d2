"""Events that cross a process boundary as their canonical bytes, parsed again only if read.

serve's consumer process decodes and decides most events (``PolicyEngine.prejudge``) and hands
them to serve, which needs little of such an event: its id, its canonical bytes (the ledger
entry's ``event`` member) and what says whether its decision touches approval state (action,
attributes, resource). Pickling the whole object graph of an event cost ~10 µs per event to send
and ~8 µs to receive (5,000-event batches, serve's garbage-collector settings): about an eighth
of the pipeline's CPU. ``pack`` sends such an event as a tuple of those values (a benchmark
batch: ~4 µs per event to send, ~3 to receive); ``unpack`` makes it a ``DeferredEvent``, whose
other fields (actor, time, change, source) are parsed from the canonical bytes the first time
anything reads them, so it is still the same event to every reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from core.event import CanonicalEvent, Resource, event_from_dict, filled

__all__ = ["DeferredEvent", "pack", "unpack"]

#: the fields parsed from the canonical bytes on first read; the others travel in the tuple
_DEFERRED = frozenset(("occurred_at", "source", "actor", "change"))
_COMPARED = tuple(name for name, spec in CanonicalEvent.__dataclass_fields__.items() if spec.compare)


class DeferredEvent(CanonicalEvent):
    """A ``CanonicalEvent`` whose ``_DEFERRED`` fields are parsed from its canonical bytes when
    first read. Equal to, and hashing as, the plain event it stands for. Made by ``unpack``."""

    def __getattr__(self, name: str) -> Any:
        # called only for what the instance does not hold yet
        if name not in _DEFERRED:
            raise AttributeError(name)
        state = self.__dict__
        full = event_from_dict(orjson.loads(state["_canonical_bytes"]), where=f"event {state['event_id']!r}")
        for key in _DEFERRED:
            state[key] = full.__dict__[key]
        return state[name]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CanonicalEvent):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _COMPARED)

    __hash__ = CanonicalEvent.__hash__


def pack(items: Sequence[Any], decided: Sequence[Any] | None) -> list[Any]:
    """``items`` ready to pickle: each event with an entry in ``decided`` (a decision made ahead)
    and no approval becomes a tuple (see the module docstring); everything else is kept as it is.
    ``items`` holds no tuples of its own (events and dead letters)."""
    if decided is None:
        return list(items)
    out: list[Any] = []
    add = out.append
    for item, decision in zip(items, decided, strict=True):
        if decision is None or not isinstance(item, CanonicalEvent) or item.approval is not None:
            add(item)
            continue
        r = item.resource
        add(
            (
                item.canonical_bytes,
                item.event_id,
                item.action,
                item.attributes,
                item.raw,
                item.raw_sha256,
                r.id,
                r.type,
                r.environment,
                r.account,
                r.data_classes,
            )
        )
    return out


def unpack(items: Sequence[Any]) -> list[Any]:
    """The inverse of ``pack``: each tuple becomes a ``DeferredEvent``."""
    out: list[Any] = []
    add = out.append
    for item in items:
        if type(item) is not tuple:
            add(item)
            continue
        canonical, event_id, action, attributes, raw, raw_sha256, rid, rtype, env, acct, classes = item
        resource = filled(Resource, id=rid, type=rtype, environment=env, account=acct, data_classes=classes)
        add(
            filled(
                DeferredEvent,
                event_id=event_id,
                action=action,
                resource=resource,
                attributes=attributes,
                approval=None,
                raw=raw,
                raw_sha256=raw_sha256,
                _canonical_bytes=canonical,
            )
        )
    return out
