"""Events that are valid on the wire.

``tests.unit.core.strategies.events`` can build events the strict parser rejects (e.g. an action
of ``'0:\\n'``: the dataclass accepts it, ``event_from_dict`` does not). A producer cannot publish
those through any adapter, so the Kafka tests draw only events that survive the JSON round trip.
"""

from __future__ import annotations

from core.errors import NormaliseError
from core.event import CanonicalEvent, event_from_dict
from tests.unit.core.strategies import events


def _valid(event: CanonicalEvent) -> bool:
    try:
        return event_from_dict(event.to_dict()) == event
    except NormaliseError:
        return False


wire_events = events.filter(_valid)
