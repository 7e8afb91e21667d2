"""How serve runs: its consumer's fetches (which the benchmark's raw reference shares) and the
DuckDB threads of its ledger."""

from __future__ import annotations

from typing import Any

import kafka
import pytest

from core.config import Config
from railbook.cli import _kafka_bench
from railbook.serve import ServeOptions, fetch_settings, ledger_config
from railbook.serve._kafka import make_consumer


class _Stop(Exception):
    pass


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def consumer(**kwargs: Any) -> Any:
        seen.append(kwargs)
        raise _Stop

    monkeypatch.setattr(kafka, "KafkaConsumer", consumer)
    return seen


def test_raw_reference_and_serve_fetch_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    options = ServeOptions("localhost:1", group="g", topics=("t",), batch_size=3000)
    fetch = fetch_settings(options)
    seen = _capture(monkeypatch)
    with pytest.raises(_Stop):
        make_consumer(options, ["t"], listener=None)
    with pytest.raises(_Stop):
        _kafka_bench._raw_consume("localhost:1", "t", 10, 1.0, fetch)
    serve_kwargs, raw_kwargs = seen
    assert fetch["max_poll_records"] == 3000
    assert fetch["max_partition_fetch_bytes"] > options.max_message_bytes  # a dead-letter-sized message fits
    for key, value in fetch.items():
        assert serve_kwargs[key] == value
        assert raw_kwargs[key] == value


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (8, 7), (None, 1)])
def test_serve_leaves_its_consumer_process_a_core(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, threads: int
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    config = Config()
    two = ServeOptions("localhost:1", group="g", topics=("t",))
    assert ledger_config(config, two).ledger.threads == threads
    assert ledger_config(config, two).ledger.path == config.ledger.path
    one = ServeOptions("localhost:1", group="g", topics=("t",), consumer_process=False)
    assert ledger_config(config, one) is config  # DuckDB's default: every core is serve's
    fixed = Config.model_validate({"ledger": {"threads": 4}})
    assert ledger_config(fixed, two) is fixed


def test_serve_opens_its_ledger_with_those_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from railbook import serve as serve_mod
    from railbook import wiring

    opened: list[Config] = []

    def open_pipeline(config: Config) -> Any:
        opened.append(config)
        raise _Stop

    monkeypatch.setattr(wiring, "open_pipeline", open_pipeline)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    with pytest.raises(_Stop):
        serve_mod.serve(Config(), ServeOptions("localhost:1", group="g", topics=("t",)))
    assert opened[0].ledger.threads == 3
