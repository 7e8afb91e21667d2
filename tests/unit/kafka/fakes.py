"""An in-memory Kafka producer behind the publisher's ``ProducerLike`` protocol (STYLE.md rule 11)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    topic: str
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]


class FakeFuture:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def add_errback(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> FakeFuture:
        if self.error is not None:
            f(*args, self.error, **kwargs)
        return self


@dataclass
class FakeProducer:
    """Records every send; ``fail_topics`` get a delivery error, ``raise_on_send`` fails ``send`` itself."""

    fail_topics: set[str] = field(default_factory=set)
    raise_on_send: BaseException | None = None
    sent: list[Sent] = field(default_factory=list)
    flushed: int = 0
    closed: bool = False

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> FakeFuture:
        if self.raise_on_send is not None:
            raise self.raise_on_send
        self.sent.append(Sent(topic, value, key, list(headers or [])))
        err = RuntimeError(f"broker rejected a message to {topic}") if topic in self.fail_topics else None
        return FakeFuture(err)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True
