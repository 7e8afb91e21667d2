"""The ``Adapter`` protocol: one source's records in, canonical events out (see ``ingest._registry``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent

__all__ = ["Adapter", "KEEP_OWN_RAW"]

#: returned by ``Adapter.scrub`` when the events carry their own ``raw`` (the canonical-event source)
KEEP_OWN_RAW: Any = object()


class Adapter(Protocol):
    """A source adapter. Implementations are stateless; ``normalise_record`` adds ``raw``/``raw_sha256``."""

    name: str
    """The ``--source`` name (``cloudtrail``, ``github``, …)."""

    def normalise(self, record: Any, *, where: str, config: Config) -> list[CanonicalEvent]:
        """Map one decoded JSON record; raise ``core.errors.NormaliseError(reason=…)`` if it cannot be."""
        ...

    def scrub(self, record: Any) -> Any:
        """What of the (already redacted) record is stored as ``raw``: drop what must never be kept
        (a prompt's text), or return ``KEEP_OWN_RAW``."""
        ...


class BaseAdapter:
    """Default ``scrub``: the redacted record is the raw."""

    name = "base"

    def scrub(self, record: Any) -> Any:
        return record
