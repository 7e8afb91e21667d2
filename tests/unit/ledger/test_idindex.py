"""The writer's event-id index (``ledger._idindex``): exact answers, growth, and trust on reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _idindex
from ledger._idindex import U64, EventIdIndex


class FakeLedger:
    """What the index reads from a ledger: the chain after n entries, and the ids from a seq on."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.reads_from: list[int] = []

    def chain_at(self, n: int) -> bytes:
        return n.to_bytes(32, "big")

    def entry_ids(self, start: int) -> Iterator[tuple[U64, list[str]]]:
        self.reads_from.append(start)
        for at in range(start, len(self.ids), 7):  # several batches
            part = self.ids[at : at + 7]
            yield np.arange(at, at + len(part), dtype=np.uint64), part

    def open(self, path: Path) -> EventIdIndex:
        return EventIdIndex.open(path, len(self.ids), self.chain_at, self.entry_ids)

    def append(self, index: EventIdIndex, ids: list[str]) -> None:
        first = len(self.ids)
        self.ids += ids
        seqs = np.arange(first, len(self.ids), dtype=np.uint64)
        index.add(index.keys(ids), seqs, size=len(self.ids), chain=self.chain_at(len(self.ids)))


def found(index: EventIdIndex, ids: list[str]) -> dict[str, list[int]]:
    at, seqs = index.candidates(index.keys(ids))
    out: dict[str, list[int]] = {}
    for i, s in zip(at.tolist(), seqs.tolist(), strict=True):
        out.setdefault(ids[i], []).append(s)
    return {k: sorted(v) for k, v in out.items()}


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16-slot minimum, so that a few dozen ids make the table grow several times."""
    monkeypatch.setattr(_idindex, "_MIN_SLOTS", 16)


@pytest.mark.usefixtures("small")
@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.lists(st.text(min_size=1, max_size=12), max_size=30), max_size=8),
    key_bits=st.sampled_from([2, 64]),
)
def test_candidates_are_exactly_the_seqs_added(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[str]], key_bits: int
) -> None:
    """With 2-bit hashes every id collides with many others (long probe chains, several ids per
    hash, ties for a free slot): a candidate is then any entry of the same hash, never a missing one."""
    path = tmp_path_factory.mktemp("ix") / "l.ids"
    fake = FakeLedger()
    index = fake.open(path)
    if key_bits < 64:
        real = index.keys
        index.keys = lambda ids: real(ids) & np.uint64((1 << key_bits) - 1)  # type: ignore[method-assign]
    try:
        for ids in batches:
            fake.append(index, ids)
        assert index.count == len(fake.ids)
        probe = sorted(set(fake.ids)) + ["never added"]
        got = found(index, probe)
        hashes = {i: int(h) for i, h in zip(fake.ids, index.keys(fake.ids), strict=True)} if fake.ids else {}
        for i in probe:
            same_id = [s for s, x in enumerate(fake.ids) if x == i]
            if key_bits == 64:
                assert got.get(i, []) == same_id
            else:  # every entry whose id hashes alike, the id's own among them
                h = int(index.keys([i])[0])
                assert got.get(i, []) == [s for s, x in enumerate(fake.ids) if hashes[x] == h]
    finally:
        index.close()


def test_grows_and_keeps_every_id(tmp_path: Path, small: None) -> None:
    fake = FakeLedger()
    index = fake.open(tmp_path / "l.ids")
    for b in range(20):
        fake.append(index, [f"id-{b}-{k}" for k in range(25)])
    assert index.slots >= 2 * index.count  # grown to at most half full
    assert (tmp_path / "l.ids").stat().st_size == 4096 + 16 * index.slots
    assert found(index, ["id-0-0", "id-19-24", "id-7-3", "nope"]) == {
        "id-0-0": [0],
        "id-19-24": [499],
        "id-7-3": [178],
    }
    index.close()


def test_a_clean_reopen_reads_nothing_and_a_crash_adds_only_the_missing_entries(
    tmp_path: Path, small: None
) -> None:
    path, fake = tmp_path / "l.ids", FakeLedger()
    index = fake.open(path)
    fake.append(index, [f"a{i}" for i in range(30)])
    index.close()
    index = fake.open(path)
    assert fake.reads_from == [] and index.count == 30
    fake.append(index, [f"b{i}" for i in range(10)])
    # the process dies here: never closed; then the ledger commits 5 entries the index never sees
    fake.ids += [f"c{i}" for i in range(5)]
    del index  # (its mapping is gone with it, its writes are in the page cache)
    again = fake.open(path)
    assert fake.reads_from == [40] and again.count == 45
    assert found(again, ["a0", "b9", "c4"]) == {"a0": [0], "b9": [39], "c4": [44]}
    again.close()


def test_adding_entries_already_in_after_a_crash_does_not_repeat_them(tmp_path: Path, small: None) -> None:
    path, fake = tmp_path / "l.ids", FakeLedger()
    index = fake.open(path)
    fake.append(index, [f"a{i}" for i in range(12)])
    # the entries went in, but the process died before the header said so
    index.covered, index.chain = 5, fake.chain_at(5)
    index._write_header(clean=False)
    del index
    again = fake.open(path)
    assert fake.reads_from == [5] and again.count == 12
    assert found(again, ["a7"]) == {"a7": [7]}
    again.close()


@pytest.mark.parametrize(
    "damage",
    ["delete", "truncate", "garbage", "other-ledger", "ledger-rolled-back", "machine-crash"],
)
def test_an_index_that_cannot_be_trusted_is_rebuilt(
    tmp_path: Path, small: None, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    path, fake = tmp_path / "l.ids", FakeLedger()
    index = fake.open(path)
    fake.append(index, [f"a{i}" for i in range(20)])
    if damage != "machine-crash":
        index.close()
    else:  # never closed, and the next open is on another boot
        del index
        monkeypatch.setattr(_idindex, "_boot_id", lambda: "another-boot")
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(100)
    elif damage == "garbage":
        path.write_bytes(b"\x00" * (4096 + 16 * 64))
    elif damage == "other-ledger":
        monkeypatch.setattr(fake, "chain_at", lambda n: b"\x07" * 32)
    elif damage == "ledger-rolled-back":
        fake.ids = fake.ids[:10]  # e.g. restored from a backup taken earlier
    again = fake.open(path)
    assert fake.reads_from == [0]
    assert again.count == len(fake.ids)
    assert found(again, ["a3", "a15"]) == ({"a3": [3], "a15": [15]} if len(fake.ids) == 20 else {"a3": [3]})
    again.close()


def test_hash_keys_differ_between_files(tmp_path: Path) -> None:
    """Ids cannot be crafted to pile into one probe chain: the hash is keyed per file."""
    a, b = FakeLedger().open(tmp_path / "a.ids"), FakeLedger().open(tmp_path / "b.ids")
    assert not np.array_equal(a.keys(["x", "y"]), b.keys(["x", "y"]))
    a.close()
    b.close()


def test_a_closed_index_refuses_lookups_rather_than_answering_not_stored(tmp_path: Path) -> None:
    fake = FakeLedger()
    index = fake.open(tmp_path / "l.ids")
    fake.append(index, ["a"])
    index.close()
    with pytest.raises(RuntimeError, match="closed"):
        index.candidates(index.keys(["a"]))
