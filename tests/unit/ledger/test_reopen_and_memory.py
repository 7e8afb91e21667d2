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


def test_memory_limit_grows_with_the_event_id_index_beyond_two_million_entries() -> None:
    assert store_mod.memory_limit(0) == store_mod.MEMORY_LIMIT
    assert store_mod.memory_limit(1_000_000) == store_mod.MEMORY_LIMIT
    assert store_mod.memory_limit(10_000_000) == "738MB"  # 128 MB + 64 B x 10M
    assert store_mod.memory_limit(10_000_000, "3GB") == "3GB"


def test_the_ledger_raises_duckdbs_memory_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "_INDEX_BYTES_PER_ENTRY", 1 << 20)  # 1 MB an entry: grows at once
    config = make_config(tmp_path, checkpoint_every=100)
    with Ledger.open(config) as led:
        assert _memory_setting(led) == "244.1 MiB"  # 256 MB
        led.append(records(300))  # a checkpoint at 300 entries: 128 + 300 MB
        assert _memory_setting(led) == "408.1 MiB"
    with Ledger.open(config) as led:
        assert _memory_setting(led) == "408.1 MiB"


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
