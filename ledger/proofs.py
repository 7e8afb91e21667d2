"""Proofs and roots from stored complete subtrees: O(log n) node reads, never a pass over the leaves.

A *node* is a complete, aligned subtree ``(level, index)`` covering leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is a leaf hash. Every range the RFC 9162
recursion visits starts at a multiple of its own largest power of two, so its hash is the
right-to-left fold of at most ``log2(n)`` complete nodes (:func:`range_nodes`). The builders here
first *plan* which nodes they need, fetch them all with one call of a :data:`NodeFetcher`, then
combine them — the same split as tessera's ``ProofBuilder`` over a ``TileFetcherFunc``.

A ``NodeFetcher`` MUST return exactly one 32-byte hash per requested node, in request order, and
MUST NOT return a node that is not complete in the tree it serves. Nothing here does I/O.

Storage keeps only the *stored levels* (C2SP tlog-tiles / tessera tiles of height
:data:`TILE_HEIGHT`): the leaves (level 0) and the interior levels that are multiples of 8 — about
n/255 interior rows for n leaves. Any other node ``(l, i)`` is derived on demand from its
descendants at the stored level ``b = 8 * (l // 8)`` below it (:func:`stored_ranges` plans the
reads, one range inside one aligned block of 256 per group; :func:`derive_nodes` hashes them up).

:class:`CompactRange` is the append side: the right border of the tree (one node per set bit of
the size), which turns a batch of new leaf hashes into the new complete nodes to store, in
storage order (see :func:`node_position`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

from ledger.merkle import NODE_HASH_PREFIX, empty_root, largest_power_of_two_below, node_hash

__all__ = [
    "CompactRange",
    "NodeFetcher",
    "NodeId",
    "TILE_HEIGHT",
    "consistency_proof_at",
    "derive_nodes",
    "inclusion_proof_at",
    "node_position",
    "is_stored",
    "range_nodes",
    "root_at",
    "stored_ranges",
]

#: ``(level, index)`` of a complete subtree
NodeId = tuple[int, int]
#: fetches the hashes of complete nodes, one per id, in order (see the module docstring)
NodeFetcher = Callable[[Sequence[NodeId]], Sequence[bytes]]


#: interior nodes are stored only at levels that are multiples of this (a tile is 2**8 = 256 nodes wide)
TILE_HEIGHT = 8


def is_stored(level: int) -> bool:
    """Whether nodes of ``level`` are stored: leaves (``entries.leaf_hash``) and the interior levels
    that are multiples of :data:`TILE_HEIGHT` (``nodes``). All others are derived on demand."""
    return level % TILE_HEIGHT == 0


def stored_ranges(ids: Iterable[NodeId]) -> list[tuple[int, int, int]]:
    """The stored nodes the hashes of ``ids`` are computed from, as ``(level, first, last)`` index
    ranges (inclusive), sorted: one range per (stored level, aligned block of 2**TILE_HEIGHT nodes)
    — a stored node needs itself, a node of level ``l`` its ``2**(l - b)`` descendants at the
    stored level ``b`` below it, all inside one block. An inclusion proof at any size needs about
    one block of leaves and one of level-8 nodes (the rest from the upper stored levels)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for level, index in ids:
        d = level % TILE_HEIGHT
        b = level - d
        lo = index << d
        hi = ((index + 1) << d) - 1
        g = groups.get((b, lo >> TILE_HEIGHT))
        if g is None:
            groups[(b, lo >> TILE_HEIGHT)] = [lo, hi]
        else:
            g[0] = min(g[0], lo)
            g[1] = max(g[1], hi)
    return sorted((b, lo, hi) for (b, _), (lo, hi) in groups.items())


def derive_nodes(ids: Iterable[NodeId], stored: Mapping[NodeId, bytes]) -> dict[NodeId, bytes]:
    """The hashes of ``ids``, each from ``stored`` (the nodes :func:`stored_ranges` lists) or hashed
    up from them: per block, the levels above the stored range bottom-up (at most
    2**TILE_HEIGHT - 1 hashes, shared by the ids of the block). Ids whose stored descendants are
    missing are left out."""
    out: dict[NodeId, bytes] = {}
    groups: dict[tuple[int, int], list[NodeId]] = {}
    for level, index in ids:
        level, index = int(level), int(index)
        d = level % TILE_HEIGHT
        if d == 0:
            h = stored.get((level, index))
            if h is not None:
                out[(level, index)] = h
        else:
            groups.setdefault((level - d, (index << d) >> TILE_HEIGHT), []).append((level, index))
    sha = hashlib.sha256
    prefix = NODE_HASH_PREFIX
    for (b, _), members in groups.items():
        lo = min(i << (lv - b) for lv, i in members)
        hi = max(((i + 1) << (lv - b)) - 1 for lv, i in members)
        top = max(lv for lv, _ in members)
        row = [stored.get((b, j)) for j in range(lo, hi + 1)]
        if None in row:
            out.update(_derive_slowly(members, stored))
            continue
        hashes: list[bytes] = row  # type: ignore[assignment]
        first = lo
        levels: dict[int, tuple[int, list[bytes]]] = {}
        for lv in range(b + 1, top + 1):
            if first & 1:  # its left sibling is outside the range: no node above it is wanted
                hashes = hashes[1:]
                first += 1
            hashes = [sha(prefix + hashes[k] + hashes[k + 1]).digest() for k in range(0, len(hashes) - 1, 2)]
            first >>= 1
            levels[lv] = (first, hashes)
        for lv, i in members:
            start, hs = levels[lv]
            out[(lv, i)] = hs[i - start]
    return out


def _derive_slowly(ids: Iterable[NodeId], stored: Mapping[NodeId, bytes]) -> dict[NodeId, bytes]:
    """:func:`derive_nodes` for a block with stored nodes missing: node by node, leaving out those
    that cannot be computed."""
    memo: dict[NodeId, bytes] = {}
    sha = hashlib.sha256
    prefix = NODE_HASH_PREFIX

    def get(level: int, index: int) -> bytes | None:
        if level % TILE_HEIGHT == 0:
            return stored.get((level, index))
        h = memo.get((level, index))
        if h is None:
            left = get(level - 1, 2 * index)
            right = get(level - 1, 2 * index + 1) if left is not None else None
            if left is None or right is None:
                return None
            h = memo[(level, index)] = sha(prefix + left + right).digest()
        return h

    out: dict[NodeId, bytes] = {}
    for level, index in ids:
        h = get(level, index)
        if h is not None:
            out[(level, index)] = h
    return out


def node_position(level: int, index: int) -> int:
    """Storage order of an interior node (level >= 1): the order in which appends complete them.

    Node ``(k, i)`` completes when leaf ``m = (i + 1) * 2**k`` arrives; before that, ``m - 1``
    leaves have completed ``(m - 1) - popcount(m - 1)`` interior nodes, and the nodes completed by
    leaf ``m`` come level by level. Positions therefore grow with every append, which keeps the
    node table sorted on disk and point reads cheap (min/max pruning) at any size.
    """
    if level < 1:
        raise ValueError(f"interior nodes have level >= 1, got {level}")
    m = (index + 1) << level
    return (m - 1) - (m - 1).bit_count() + (level - 1)


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The complete nodes whose right-to-left fold is the RFC 9162 hash of leaves ``[begin, end)``."""
    out: list[NodeId] = []
    while begin < end:
        n = end - begin
        k = 1 << (n.bit_length() - 1)  # the largest power of two <= n
        level = k.bit_length() - 1
        if begin % k:
            raise ValueError(f"range [{begin}, {end}) is not one the RFC 6962 recursion produces")
        out.append((level, begin >> level))
        begin += k
    return out


def _fold(hashes: Sequence[bytes]) -> bytes:
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _resolve(ranges: Sequence[tuple[int, int]], fetch: NodeFetcher) -> list[bytes]:
    plans = [range_nodes(b, e) for b, e in ranges]
    wanted = sorted({n for plan in plans for n in plan})
    got = list(fetch(wanted))
    if len(got) != len(wanted):
        raise ValueError(f"node fetcher returned {len(got)} hashes for {len(wanted)} nodes")
    table = dict(zip(wanted, got, strict=True))
    return [_fold([table[n] for n in plan]) for plan in plans]


def root_at(tree_size: int, fetch: NodeFetcher) -> bytes:
    """The root of the tree of the first ``tree_size`` leaves."""
    if tree_size == 0:
        return empty_root()
    return _resolve([(0, tree_size)], fetch)[0]


def _inclusion_ranges(m: int, begin: int, end: int, out: list[tuple[int, int]]) -> None:
    n = end - begin
    if n <= 1:
        return
    k = largest_power_of_two_below(n)
    if m < k:
        _inclusion_ranges(m, begin, begin + k, out)
        out.append((begin + k, end))
    else:
        _inclusion_ranges(m - k, begin + k, end, out)
        out.append((begin, begin + k))


def inclusion_proof_at(index: int, tree_size: int, fetch: NodeFetcher) -> list[bytes]:
    """RFC 9162 audit path for leaf ``index`` in the tree of size ``tree_size``."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is outside a tree of size {tree_size}")
    ranges: list[tuple[int, int]] = []
    _inclusion_ranges(index, 0, tree_size, ranges)
    return _resolve(ranges, fetch) if ranges else []


def _consistency_ranges(m: int, begin: int, end: int, whole: bool, out: list[tuple[int, int]]) -> None:
    n = end - begin
    if m == n:
        if not whole:
            out.append((begin, end))
        return
    k = largest_power_of_two_below(n)
    if m <= k:
        _consistency_ranges(m, begin, begin + k, whole, out)
        out.append((begin + k, end))
    else:
        _consistency_ranges(m - k, begin + k, end, False, out)
        out.append((begin, begin + k))


def consistency_proof_at(old_size: int, new_size: int, fetch: NodeFetcher) -> list[bytes]:
    """RFC 9162 ``PROOF(old_size, D[new_size])``; empty when ``old_size`` is 0 or ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is outside 0..{new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    _consistency_ranges(old_size, 0, new_size, True, ranges)
    return _resolve(ranges, fetch)


class CompactRange:
    """The right border of a tree: enough to append leaves and compute the root, O(log n) memory.

    Not thread-safe; owned by one writer (or one verifier pass).
    """

    __slots__ = ("_border", "size")

    def __init__(self, size: int = 0, border: Sequence[bytes] = ()) -> None:
        """``border``: hashes of :func:`range_nodes(0, size) <range_nodes>`, left to right."""
        if len(border) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} border nodes, got {len(border)}")
        self.size = size
        # stored left (highest level) to right (lowest), as range_nodes(0, size) lists them
        self._border: list[bytes] = list(border)

    @classmethod
    def load(cls, size: int, fetch: NodeFetcher) -> CompactRange:
        """Rebuild the border of a stored tree with one fetch."""
        ids = range_nodes(0, size)
        return cls(size, list(fetch(ids)) if ids else [])

    def append(
        self, leaf_hash: bytes, out: list[tuple[int, int, bytes]] | None = None, *, every: int = 1
    ) -> None:
        """Add one leaf; new complete interior nodes ``(level, index, hash)`` of the levels divisible by
        ``every`` go to ``out`` in position order (``every=TILE_HEIGHT``: the stored levels,
        :func:`is_stored`, what the writer inserts into ``nodes``)."""
        border = self._border
        cur = leaf_hash
        size = self.size
        level = 0
        # Merging mirrors a binary increment: one merge per trailing one bit of the old size.
        while size & 1:
            cur = node_hash(border.pop(), cur)
            size >>= 1
            level += 1
            if out is not None and not level % every:
                out.append((level, self.size >> level, cur))
        border.append(cur)
        self.size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Append many leaves; returns the interior nodes they complete, in position order."""
        out: list[tuple[int, int, bytes]] = []
        for h in leaf_hashes:
            self.append(h, out)
        return out

    def extend_hashes(self, leaf_hashes: Iterable[bytes], out: list[bytes]) -> None:
        """:meth:`append` for many leaves, appending only the new nodes' hashes to ``out`` (in
        position order) — the verifier's inner loop, kept free of calls and tuples."""
        border = self._border
        pop = border.pop
        push = border.append
        add = out.append
        sha = hashlib.sha256
        prefix = NODE_HASH_PREFIX
        size = self.size
        for cur in leaf_hashes:
            s = size
            while s & 1:
                cur = sha(prefix + pop() + cur).digest()
                add(cur)
                s >>= 1
            push(cur)
            size += 1
        self.size = size

    def extend_stored_hashes(
        self, leaf_hashes: Iterable[bytes], out: list[bytes], positions: list[int]
    ) -> None:
        """:meth:`extend_hashes` giving only the nodes of stored levels (:func:`is_stored`): their
        hashes to ``out`` and their :func:`node_position` to ``positions`` — the verifier's loop."""
        border = self._border
        pop = border.pop
        push = border.append
        add = out.append
        sha = hashlib.sha256
        prefix = NODE_HASH_PREFIX
        height = TILE_HEIGHT
        size = self.size
        for cur in leaf_hashes:
            s = size
            level = 0
            while s & 1:
                cur = sha(prefix + pop() + cur).digest()
                s >>= 1
                level += 1
                if not level % height:
                    add(cur)
                    positions.append(node_position(level, size >> level))
            push(cur)
            size += 1
        self.size = size

    def root(self) -> bytes:
        """The root of the current tree (SHA-256("") when empty)."""
        if not self._border:
            return empty_root()
        return _fold(self._border)

    def border(self) -> list[bytes]:
        return list(self._border)
