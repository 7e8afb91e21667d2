"""Which event ids the ledger holds: an on-disk hash table beside the DuckDB file (internal).

Why not DuckDB's UNIQUE constraint: it is an ART index that DuckDB keeps whole in memory, so a
writer's memory grows with the ledger, and with random-looking ids (CloudTrail event ids, UUIDs)
each insert into it slows down as it grows. Measured on this machine, 5,000-row transactions
under the ledger's 256 MB limit: with UNIQUE the insert rate fell from 156k to 78k rows/s by 2.5M
random ids and the next insert ran out of memory; without it, a steady 380k rows/s.

This table lives in a file (``<ledger>.ids``) mapped into memory. Its pages stay in the operating
system's page cache, not in the writer's own memory: after every few thousand probes the mapping
is dropped from the process (``MADV_DONTNEED``; the data stays in the cache and the file), so the
writer's resident memory stays flat however large the ledger grows.

Layout: a 4 KiB header, then a power-of-two number of 16-byte slots, linear probing. A slot holds
a 64-bit keyed BLAKE2b hash of the event id and ``seq + 1`` (0 = empty). A hash match is only a
candidate: ``Ledger`` confirms it against the stored entry at that seq, so a collision can never
turn a new event into a duplicate. The hash key is random per file, so ids cannot be crafted to
pile into one probe chain.

It is derived data, never evidence: ``railbook verify`` does not read it, and anything doubtful
about it (missing, torn, made for another ledger, or left open when the machine went down) makes
the writer rebuild it from the entries. After a process crash the page cache still holds every
write, so the writer only adds the entries after ``covered`` (the ledger size the header vouches
for); after an operating-system crash (a new boot id) it rebuilds.
"""

from __future__ import annotations

import functools
import logging
import mmap
import os
import secrets
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from hashlib import blake2b
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["EventIdIndex"]

logger = logging.getLogger(__name__)

_MAGIC = b"RBIDX001"
_HEADER = 4096
#: magic, slots, count, covered, clean, chain (32), hash key (16), boot id (36)
_FIELDS = struct.Struct("<8sQQQB32s16s36s")
_MIN_SLOTS = 1 << 16
#: grow beyond this share of slots in use (to half: linear probing stays short below it)
_MAX_LOAD = 0.7
#: slot probes (about as many pages) after which an insert drops the mapping from the process.
#: Dropping is not free: the next touch of each page is a page fault (measured ~0.4 us per id per
#: drop), so an insert drops the pages its own lookup brought in, not a lookup before it
_DROP_AFTER = 8192
#: the same for lookups without inserts (``ExistingLookup``)
_DROP_AFTER_LOOKUPS = 8 * _DROP_AFTER

U64 = npt.NDArray[np.uint64]
#: the stored entries from seq ``start`` on, in batches: (their seqs, their event ids)
EntryIds = Callable[[int], Iterator[tuple[U64, list[str]]]]


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:36]
    except OSError:  # not Linux: no way to tell a process crash from a machine crash; assume the worse
        return ""


def _distrust(head: bytes, file_size: int, size: int, chain_at: Callable[[int], bytes]) -> str | None:
    """Why an index file with header ``head`` cannot serve a ledger of ``size`` entries (or None)."""
    if len(head) < _FIELDS.size:
        return "index file is truncated"
    magic, slots, _, covered, clean, chain, _, boot = _FIELDS.unpack(head)
    if magic != _MAGIC:
        return "not an index file of this version"
    if slots < _MIN_SLOTS or slots & (slots - 1) or file_size != _HEADER + 16 * slots:
        return "index file has the wrong size"
    written_on = boot.rstrip(b"\0").decode(errors="replace")
    if not clean and (not written_on or written_on != _boot_id()):
        return "the machine went down while the index was open"
    if covered > size or chain_at(covered) != chain:
        return "index was made for another state of the ledger"
    return None


def _slots_for(entries: int) -> int:
    slots = _MIN_SLOTS
    while entries > slots // 2:
        slots *= 2
    return slots


class EventIdIndex:
    """The event-id hash table of one ledger file, open for writing (one writer, any threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._keys: U64 = np.zeros(0, np.uint64)
        self._vals: U64 = np.zeros(0, np.uint64)
        self._slots = 0
        self._count = 0
        self._hash_key = b""
        self._touched = 0
        self.covered = 0
        self.chain = b""

    # --- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path, size: int, chain_at: Callable[[int], bytes], entry_ids: EntryIds
    ) -> EventIdIndex:
        """Open the index of a ledger of ``size`` entries, bringing it up to date (or rebuilding it):
        ``chain_at(n)`` is the ledger's chain hash after ``n`` entries, ``entry_ids`` reads ids."""
        index = cls(path)
        try:
            reason = index._reuse(size, chain_at)
            if reason is not None:
                if size:
                    logger.warning("building the event-id index %s for %d entries: %s", path, size, reason)
                index._create(_slots_for(size), secrets.token_bytes(16))
                index.chain = chain_at(0)
            index._mark_open()
            if index.covered < size:
                index._catch_up(entry_ids, size, chain_at(size))
        except BaseException:
            index._close_map()
            raise
        return index

    def _reuse(self, size: int, chain_at: Callable[[int], bytes]) -> str | None:
        """Map an existing file if it can be trusted for this ledger; else why not."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return "no index file"
        try:
            head = os.pread(fd, _FIELDS.size, 0)
            reason = _distrust(head, os.fstat(fd).st_size, size, chain_at)
        except BaseException:
            os.close(fd)
            raise
        if reason is not None:
            os.close(fd)
            return reason
        _, slots, count, covered, _, chain, key, _ = _FIELDS.unpack(head)
        self._fd = fd
        self._map_file(slots)
        self._count, self.covered, self.chain, self._hash_key = count, covered, chain, key
        return None

    def _create(self, slots: int, hash_key: bytes) -> None:
        """An empty table of ``slots`` slots, hashing with ``hash_key``, replacing the file."""
        self._close_map()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, _HEADER + 16 * slots)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._map_file(slots)
        self._count, self.covered, self.chain = 0, 0, b""
        self._hash_key = hash_key

    def _map_file(self, slots: int) -> None:
        self._map = mmap.mmap(self._fd, _HEADER + 16 * slots)
        table = np.frombuffer(self._map, dtype="<u8", offset=_HEADER).reshape(slots, 2)
        self._keys, self._vals = table[:, 0], table[:, 1]
        self._slots = slots

    def _write_header(self, *, clean: bool) -> None:
        assert self._map is not None
        boot = _boot_id().encode()
        self._map[: _FIELDS.size] = _FIELDS.pack(
            _MAGIC, self._slots, self._count, self.covered, int(clean), self.chain, self._hash_key, boot
        )

    def _mark_open(self) -> None:
        """On disk before any slot changes: the index is open (a machine crash from now on rebuilds)."""
        assert self._map is not None
        self._write_header(clean=False)
        self._map.flush(0, mmap.PAGESIZE)

    def _catch_up(self, entry_ids: EntryIds, size: int, chain: bytes) -> None:
        """Add the entries ``covered .. size`` (some may be in already: a crash after adding them)."""
        for seqs, ids in entry_ids(self.covered):
            self._add(self.keys(ids), seqs, idempotent=True)
        self.covered, self.chain = size, chain
        self._write_header(clean=False)

    def close(self) -> None:
        """Write everything out and mark the file clean (the next open trusts it without rebuilding)."""
        with self._lock:
            if self._map is not None:
                self._map.flush()
                self._write_header(clean=True)
                self._map.flush(0, mmap.PAGESIZE)
            self._close_map()

    def _close_map(self) -> None:
        self._keys = self._vals = np.zeros(0, np.uint64)  # release the views before the map
        self._slots = 0
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # --- lookups and inserts ----------------------------------------------------------------------

    def keys(self, event_ids: Sequence[str]) -> U64:
        """The table's hash of each id (this file's key)."""
        key = self._hash_key
        joined = b"".join(blake2b(i.encode(), digest_size=8, key=key).digest() for i in event_ids)
        return np.frombuffer(joined, dtype="<u8")

    def candidates(self, keys: U64) -> tuple[npt.NDArray[np.intp], U64]:
        """``(i, seq)`` for every stored entry whose hash equals ``keys[i]`` (to be confirmed)."""
        with self._lock:
            if not self._slots:  # an empty answer would say "not stored" for every id
                raise RuntimeError(f"event-id index {str(self.path)!r} is closed")
            return self._probe(keys)

    def add(self, keys: U64, seqs: U64, *, size: int, chain: bytes) -> None:
        """Record that the entries ``seqs`` (ids hashed to ``keys``) are committed, and that the
        ledger now has ``size`` entries ending in ``chain``."""
        with self._lock:
            self._add(keys, seqs, idempotent=False)
            self.covered, self.chain = size, chain
            self._write_header(clean=False)

    def _probe(self, keys: U64) -> tuple[npt.NDArray[np.intp], U64]:
        mask = np.uint64(self._slots - 1)
        active = np.arange(len(keys))
        pos = keys & mask
        hit_i: list[npt.NDArray[np.intp]] = []
        hit_v: list[U64] = []
        while active.size:
            self._touched += active.size
            vals = self._vals[pos]
            used = vals != 0
            match = used & (self._keys[pos] == keys[active])
            if match.any():
                hit_i.append(active[match])
                hit_v.append(vals[match] - np.uint64(1))
            active, pos = active[used], (pos[used] + np.uint64(1)) & mask
        self._maybe_drop(_DROP_AFTER_LOOKUPS)
        if not hit_i:
            return np.zeros(0, np.intp), np.zeros(0, np.uint64)
        return np.concatenate(hit_i), np.concatenate(hit_v)

    def _add(self, keys: U64, seqs: U64, *, idempotent: bool) -> None:
        vals = seqs.astype(np.uint64) + np.uint64(1)
        if idempotent:  # skip (hash, seq) pairs already in
            i, seq = self._probe(keys)
            there = i[seq + np.uint64(1) == vals[i]]
            if there.size:
                keep = np.ones(len(keys), bool)
                keep[there] = False
                keys, vals = keys[keep], vals[keep]
        if self._count + len(keys) > self._slots * _MAX_LOAD:
            self._grow(_slots_for(self._count + len(keys)))
        self._place(keys, vals)
        self._count += len(keys)
        self._maybe_drop(_DROP_AFTER)

    def _place(self, keys: U64, vals: U64) -> None:
        """Put each (key, val) into the first free slot of its probe chain (all in one pass per probe
        step; two keys meeting at one free slot: the first takes it, the other probes on)."""
        mask = np.uint64(self._slots - 1)
        pos = keys & mask
        todo = np.arange(len(keys))
        while todo.size:
            self._touched += todo.size
            free = self._vals[pos] == 0
            slot, first = np.unique(pos[free], return_index=True)
            won = np.flatnonzero(free)[first]
            self._keys[slot] = keys[todo[won]]
            self._vals[slot] = vals[todo[won]]  # after the key: a non-zero value marks the slot used
            rest = np.ones(todo.size, bool)
            rest[won] = False
            step = (~free)[rest].astype(np.uint64)  # a loser of a free slot finds it used next round
            todo, pos = todo[rest], (pos[rest] + step) & mask

    def _grow(self, slots: int) -> None:
        """Rehash into a file of ``slots`` slots (written beside, then renamed over the old one)."""
        old_keys, old_vals, old_map, old_fd = self._keys, self._vals, self._map, self._fd
        self._map, self._fd = None, -1
        try:
            covered, chain, count = self.covered, self.chain, self._count
            self._create(slots, self._hash_key)
            for at in range(0, old_vals.size, 1 << 20):
                used = np.flatnonzero(old_vals[at : at + (1 << 20)]) + at
                self._place(old_keys[used].copy(), old_vals[used].copy())
            self._count, self.covered, self.chain = count, covered, chain
            self._write_header(clean=False)
        finally:
            del old_keys, old_vals
            if old_map is not None:
                old_map.close()
            if old_fd >= 0:
                os.close(old_fd)
        logger.info("event-id index grown to %d slots (%d entries)", slots, self._count)

    def _maybe_drop(self, after: int) -> None:
        """Keep the table's pages out of the process's memory (they stay in the page cache); a
        table no larger than ``after`` pages may as well stay mapped."""
        if self._touched >= after and self._map is not None and self._slots * 16 > after * mmap.PAGESIZE:
            self._map.madvise(mmap.MADV_DONTNEED)
            self._touched = 0

    @property
    def count(self) -> int:
        return self._count

    @property
    def slots(self) -> int:
        return self._slots
