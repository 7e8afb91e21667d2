"""Integration fixtures: real services, session-scoped (STYLE.md rule 12).

``kafka_broker`` starts Apache Kafka (KRaft, one node, loopback, data in a temp dir) from the jars
Maven fetched into ``.cache/kafka/libs`` (``scripts/kafka-broker.sh fetch``; fetched here when
missing), asserts it answers (its log is shown if not), yields the bootstrap address and stops it
(SIGTERM, then SIGKILL). Set ``RAILBOOK_TEST_KAFKA=host:port`` to use a running broker instead.
Tests isolate themselves with ``kafka_ns``: a fresh topic namespace (``t1a2b3c.railbook.events``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address (``127.0.0.1:PORT``) of a real Kafka broker for the whole session."""
    external = os.environ.get("RAILBOOK_TEST_KAFKA")
    if external:
        yield external
        return
    # imported here so that collecting integration tests of other areas never needs Kafka
    from core.errors import KafkaError
    from ingest._kafka_broker import fetch_jars, start_broker

    try:
        fetch_jars()
    except KafkaError as exc:
        pytest.fail(f"cannot fetch the Kafka broker jars with Maven:\n{exc.diagnostics()}", pytrace=False)
    workdir = tmp_path_factory.mktemp("kafka")
    try:
        broker = start_broker(workdir, heap="384m", timeout=120)
    except KafkaError as exc:
        pytest.fail(f"the Kafka broker did not come up:\n{exc.diagnostics()}", pytrace=False)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def kafka_ns() -> str:
    """A topic namespace unique to the test: ``f"{kafka_ns}railbook.events"``."""
    return f"t{uuid.uuid4().hex[:10]}."
