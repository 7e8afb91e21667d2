"""A reopened ledger appends like a new one, and DuckDB gets the memory its event-id index needs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from core.config import Config
from core.errors import LedgerError, LedgerLockedError
from ledger import Ledger
from ledger import store as store_mod
from ledger.verify import verify_ledger
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


# --- reconnecting: DuckDB lets go of what a connection wrote only when it is closed -------------


def _reconnects(caplog: pytest.LogCaptureFixture) -> int:
    return sum("ledger connection reopened" in r.getMessage() for r in caplog.records)


def test_a_long_running_writer_reconnects_at_checkpoints_and_loses_nothing(
    config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every 40 entries (checkpoints every 10): appends, both append paths, duplicates, lookups
    handed out before, segments and proofs all carry on over the new connection."""
    caplog.set_level("INFO", logger="ledger.store")
    monkeypatch.setattr(store_mod, "RECONNECT_ENTRIES", 40)
    with Ledger.open(config) as led:
        lookup = led.existing_lookup()
        first = led.connection()
        for k in range(6):
            led.append(records(15, start=15 * k))
        assert led.connection() is not first
        led.append_many([records(15, start=90 + 15 * k) for k in range(6)] + [records(5, start=0)])
        assert _reconnects(caplog) >= 4
        assert led.size == 180
        assert lookup(["test:0", "test:179", "test:180"]) == {"test:0", "test:179"}
        r = led.append(records(3, start=178))
        assert r.duplicates == ["test:178", "test:179"]
        led.checkpoint()
        assert led.inclusion_proof(7, led.size)
        lookup.close()
    result = verify_ledger(config, segments=config.segments_dir)
    assert result.ok, result.problems
    assert result.entries_checked == 181


def test_lookups_on_another_thread_carry_on_while_the_writer_reconnects(
    config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As serve looks up the next batch's ids while its writer thread appends (and reconnects)."""
    caplog.set_level("INFO", logger="ledger.store")
    monkeypatch.setattr(store_mod, "RECONNECT_ENTRIES", 20)
    with Ledger.open(config) as led:
        led.append(records(10))
        lookup = led.existing_lookup()
        stop = threading.Event()
        errors: list[BaseException] = []

        def look() -> None:
            try:
                while not stop.is_set():
                    # stored before this thread started: found through every reconnect
                    assert lookup([f"test:{i}" for i in range(12)]) >= {f"test:{i}" for i in range(10)}
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=look)
        t.start()
        try:
            for k in range(1, 30):
                led.append(records(10, start=10 * k))
        finally:
            stop.set()
            t.join()
        assert not errors, errors
        assert _reconnects(caplog) >= 10
        assert lookup([f"test:{i}" for i in range(300, 302)]) == set()
        lookup.close()
        with pytest.raises(LedgerError, match="closed"):
            lookup(["test:0"])


def test_reconnecting_keeps_a_raised_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "RECONNECT_ENTRIES", 1)
    with Ledger.open(make_config(tmp_path)) as led:
        led.append(records(5))
        led.connection().execute("SET memory_limit = '300MB'")
        led._memory_mb = 300  # as _grow_memory leaves it
        first = led.connection()
        led.append(records(10, start=5))
        assert led.connection() is not first
        assert _memory_setting(led) == "286.1 MiB"


def test_a_writer_waits_for_a_process_that_took_the_file_while_it_reconnected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(store_mod, "RECONNECT_ENTRIES", 1)
    real = store_mod.open_connection
    refusals = iter([True, True])

    def open_connection(path: Path, *, read_only: bool) -> Any:
        if next(refusals, False):
            raise LedgerLockedError("held by another process")
        return real(path, read_only=read_only)

    with Ledger.open(make_config(tmp_path)) as led:
        led.append(records(5))
        monkeypatch.setattr(store_mod, "open_connection", open_connection)
        led.append(records(10, start=5))
        assert "taken by another process while reconnecting" in caplog.text
        assert led.size == 15 and led.existing(["test:14"]) == {"test:14"}


def test_a_writer_that_cannot_get_its_file_back_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "RECONNECT_ENTRIES", 1)
    monkeypatch.setattr(store_mod, "RECONNECT_WAIT_S", 0.2)

    def held(path: Path, *, read_only: bool) -> Any:
        raise LedgerLockedError("held by another process")

    config = make_config(tmp_path)
    led = Ledger.open(config)
    led.append(records(5))
    monkeypatch.setattr(store_mod, "open_connection", held)
    with pytest.raises(LedgerError, match=r"reopening the ledger .* after 15 entries failed.*committed"):
        led.append(records(10, start=5))
    monkeypatch.undo()
    with Ledger.open(config) as again:  # nothing lost: the append had committed
        assert again.size == 15


def _threads_setting(led: Ledger) -> int:
    return int(led.connection().execute("SELECT current_setting('threads')").fetchall()[0][0])


def test_configured_duckdb_threads_hold_across_reconnects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "RECONNECT_ENTRIES", 1)
    with Ledger.open(make_config(tmp_path)) as led:
        default = _threads_setting(led)
    wanted = default + 1  # not DuckDB's default, whatever the machine
    with Ledger.open(make_config(tmp_path, threads=wanted)) as led:
        assert _threads_setting(led) == wanted
        first = led.connection()
        led.append(records(10))
        assert led.connection() is not first
        assert _threads_setting(led) == wanted
