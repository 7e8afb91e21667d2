"""A reopened ledger appends like a new one, and DuckDB gets the memory its event-id index needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Config
from core.errors import LedgerError
from ledger import Ledger
from ledger import store as store_mod
from tests.unit.ledger.conftest import make_config, records


def _memory_setting(led: Ledger) -> str:
    row = led.connection().execute("SELECT current_setting('memory_limit')").fetchall()
    return str(row[0][0])


@pytest.mark.parametrize("n", [5, 17, 400, 2048, 3000])
def test_a_reopened_ledger_appends_batches_of_any_size(config: Config, n: int) -> None:
    """Opening a ledger with checkpoints ends with one-row reads; DuckDB 2's client used to keep
    such a result open and refuse the ``register`` that starts a transaction of 17-2,048 entries."""
    with Ledger.open(config) as led:
        led.append(records(30))
        led.checkpoint()
    with Ledger.open(config) as led:
        assert len(led.append(records(n, start=30)).appended) == n
        led.latest_checkpoint()
        led.stats()
        assert len(led.append(records(n, start=30 + n)).appended) == n
        assert led.append_many([records(n, start=30 + 2 * n)]) == n
        assert led.size == 30 + 3 * n


def test_the_memory_the_event_id_index_needs_grows_beyond_two_million_entries() -> None:
    assert store_mod._index_memory_mb(0) == 256  # MEMORY_LIMIT
    assert store_mod._index_memory_mb(1_000_000) == 256
    assert store_mod._index_memory_mb(10_000_000) == 738  # 128 MB + 64 B x 10M


def test_an_append_that_runs_out_of_memory_gets_more_and_is_appended_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As a reopened large ledger's first append does when its event-id index must be loaded
    whole: here DuckDB starts with 8 MB and the size calls for 64 MB."""
    monkeypatch.setattr(store_mod, "MEMORY_LIMIT", "8MB")
    monkeypatch.setattr(store_mod, "_WORKING_MB", 64)
    with Ledger.open(make_config(tmp_path)) as led:
        assert _memory_setting(led) == "7.6 MiB"
        assert len(led.append(records(5000)).appended) == 5000
        assert _memory_setting(led) == "61.0 MiB"
        assert "memory_limit raised from 8MB to 64MB" in caplog.text
        assert led.size == 5000 and led.existing(["test:0", "test:4999"]) == {"test:0", "test:4999"}
        assert not led._grow_memory()  # raised as far as this size calls for: the next one fails


def test_a_configured_memory_limit_is_kept_and_a_bad_one_is_named(tmp_path: Path) -> None:
    with Ledger.open(make_config(tmp_path, memory_limit="1GB")) as led:
        led.append(records(30))
        assert _memory_setting(led) == "953.6 MiB"
    with pytest.raises(LedgerError, match=r"\[ledger\] memory_limit 'lots'"):
        Ledger.open(make_config(tmp_path, memory_limit="lots"))


def test_running_out_of_memory_names_the_setting_and_appends_nothing(tmp_path: Path) -> None:
    with Ledger.open(make_config(tmp_path, memory_limit="8MB")) as led:
        with pytest.raises(LedgerError, match=r"Set \[ledger\] memory_limit higher") as err:
            led.append(records(5000))
        assert "rolled back" in str(err.value)
        assert led.size == 0
        assert led.existing(["test:0"]) == set()
