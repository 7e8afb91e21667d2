"""The kafka-python consumer as ``serve`` uses it: creation, rebalance listener, seeks, commits.

Shared by the in-process consumer (``Server`` with ``consumer_process=False``) and the consumer
process (``_front``). kafka-python 3 runs rebalance callbacks on its I/O thread, where nothing may
block on the network: the callbacks only note what changed; the seeks happen on the polling
thread right after the poll that rebalanced, and records that poll returned for those partitions
are dropped unprocessed (they were fetched from Kafka's idea of the position, not the ledger's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.errors import KafkaError

if TYPE_CHECKING:
    from railbook.serve._options import ServeOptions

__all__ = [
    "commit_offsets",
    "fetch_settings",
    "kafka_committed",
    "make_consumer",
    "rebalance_listener",
    "seek_partitions",
]

logger = logging.getLogger(__name__)


def fetch_settings(options: ServeOptions) -> dict[str, int]:
    """How serve's consumer fetches: ``KafkaConsumer`` settings, shared with the benchmark's raw
    consume reference (``railbook bench kafka``), which must read the way serve reads. With
    kafka-python's defaults (1 MiB per partition), a consumer doing nothing but decoding spent a
    third of its time waiting for fetches: 15k against 23-28k events/s in alternating passes."""
    return {
        "max_poll_records": options.batch_size,
        # one message up to the dead-letter limit must fit a fetch; the broker returns at least
        # one batch even when larger, so this bounds memory rather than correctness
        "max_partition_fetch_bytes": max(1 << 20, options.max_message_bytes + 1024),
        "fetch_max_bytes": 64 << 20,
    }


def make_consumer(options: ServeOptions, topics: Sequence[str], listener: Any) -> Any:
    """A subscribed ``KafkaConsumer`` (auto-commit off); ``KafkaError`` naming the fix if the broker
    cannot be reached."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError as _KafkaPythonError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=options.bootstrap,
            group_id=options.group,
            client_id=f"railbook-serve-{options.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **fetch_settings(options),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            bootstrap_timeout_ms=int(options.connect_timeout * 1000),
            request_timeout_ms=30_000,
            # a topic created just before (or while) serve joins has no metadata yet and gets no
            # partitions until the next refresh: refresh every 10 s, not kafka-python's 5 min
            metadata_max_age_ms=10_000,
            group_instance_id=options.instance_id,
        )
        consumer.subscribe(list(topics), listener=listener)
    except _KafkaPythonError as exc:
        raise KafkaError(
            f"cannot reach a Kafka broker at {options.bootstrap!r} within {options.connect_timeout:g}s "
            f"({type(exc).__name__}); check --kafka host:port and that the broker is running "
            "(for a local one: scripts/kafka-broker.sh start)"
        ) from exc
    return consumer


def rebalance_listener(
    on_assigned: Callable[[Sequence[Any]], None], on_revoked: Callable[[Sequence[Any]], None]
) -> Any:
    """A kafka-python ``ConsumerRebalanceListener`` (it must subclass it) calling the two functions."""
    from kafka import ConsumerRebalanceListener

    class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
        """Seeks assigned partitions to the ledger's offsets; commits revoked ones to the group."""

        def on_partitions_revoked(self, revoked: Sequence[Any]) -> None:
            on_revoked(revoked)

        def on_partitions_assigned(self, assigned: Sequence[Any]) -> None:
            on_assigned(assigned)

    return _Rebalance()


def kafka_committed(consumer: Any, tp: Any) -> int | None:
    """The group's committed offset of ``tp`` (``None``: none, or it cannot be read)."""
    try:
        off = consumer.committed(tp)
    except Exception:
        logger.warning(
            "cannot read the group offset topic=%s partition=%d", tp.topic, tp.partition, exc_info=True
        )
        return None
    return int(off) if off is not None and off >= 0 else None


def seek_partitions(
    consumer: Any, pending: Iterable[Any], stored: Mapping[tuple[str, int], int], group: str
) -> None:
    """Seek each newly assigned partition to max(ledger offset ``stored``, group offset)."""
    for tp in pending:
        own = stored.get((tp.topic, tp.partition))
        committed = kafka_committed(consumer, tp)
        if own is not None and committed is not None and committed > own:
            logger.warning(
                "partition handed over topic=%s partition=%d ledger_offset=%d group_offset=%d "
                "(offsets below %d are in another ledger of group %s)",
                tp.topic,
                tp.partition,
                own,
                committed,
                committed,
                group,
            )
        start = max((o for o in (own, committed) if o is not None), default=None)
        if start is None:
            consumer.seek_to_beginning(tp)
            logger.info("assigned topic=%s partition=%d from=beginning", tp.topic, tp.partition)
        else:
            consumer.seek(tp, start)
            logger.info("assigned topic=%s partition=%d from=%d", tp.topic, tp.partition, start)


def commit_offsets(
    consumer: Any,
    stored: Mapping[tuple[str, int], int],
    only: Sequence[tuple[str, int]] | None,
    *,
    blocking: bool = True,
) -> None:
    """Commit the ledger's offsets ``stored`` of ``only`` (``None``: every assigned partition) to
    the group. Failures are logged: the ledger has the offsets; the group offset is advisory."""
    from kafka.structs import OffsetAndMetadata, TopicPartition

    if only is None:
        try:
            only = [(tp.topic, tp.partition) for tp in consumer.assignment()]
        except Exception:
            only = []
    keys = [k for k in only if k in stored]
    if not keys:
        return
    offsets = {TopicPartition(t, p): OffsetAndMetadata(stored[(t, p)], "", -1) for t, p in keys}
    try:
        if blocking:
            consumer.commit(offsets)
        else:
            consumer.commit_async(offsets)
    except Exception as exc:
        logger.warning("kafka offset commit failed (ledger offsets are authoritative): %s", exc)
