"""RFC 6962 / RFC 9162 Merkle tree primitives, as plain functions over bytes.

Everything here is pure: bytes in, bytes (or bool) out, no I/O. Definitions follow RFC 9162 §2.1:

- ``MTH({}) = SHA-256()`` (the hash of the empty string),
- ``MTH({d0}) = SHA-256(0x00 || d0)`` (the leaf hash),
- ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with ``k`` the largest power of two
  smaller than ``n``.

Inclusion proofs are RFC 9162 §2.1.3 audit paths (deepest sibling first), consistency proofs are
§2.1.4 ``PROOF(m, D[n])``; the verifiers are the §2.1.3.2 and §2.1.4.2 algorithms, which is what
transparency-dev/merkle and certificate-transparency-go implement, so proofs cross-check with them.

The functions that take ``leaves`` take the *entry bytes* (they hash them); they are the reference
implementation, linear in the number of leaves. The ledger's own fast paths over stored interior
hashes live in :mod:`ledger.proofs` and are tested to agree with these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "HASH_SIZE",
    "LEAF_HASH_PREFIX",
    "NODE_HASH_PREFIX",
    "consistency_proof",
    "empty_root",
    "inclusion_proof",
    "largest_power_of_two_below",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

#: RFC 6962 §2.1 domain separation: leaves are hashed with a 0x00 prefix …
LEAF_HASH_PREFIX = b"\x00"
#: … and interior nodes with 0x01, so a leaf can never be passed off as a node (second preimage).
NODE_HASH_PREFIX = b"\x01"
#: SHA-256 output length; every hash a verifier accepts must have exactly this length.
HASH_SIZE = 32

_sha256 = hashlib.sha256


def empty_root() -> bytes:
    """The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1)."""
    return _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_HASH_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(NODE_HASH_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): the RFC's split point ``k``."""
    if n < 2:
        raise ValueError(f"split point is defined for n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def _mth(hashes: Sequence[bytes], begin: int, end: int) -> bytes:
    n = end - begin
    if n == 1:
        return hashes[begin]
    k = largest_power_of_two_below(n)
    return node_hash(_mth(hashes, begin, begin + k), _mth(hashes, begin + k, end))


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (iterative, O(n) hashes, O(log n) memory)."""
    if not leaf_hashes:
        return empty_root()
    # A stack of (height, hash) of complete subtrees, merged as in a binary counter; the final
    # right-to-left fold reproduces the RFC's left-balanced shape for any n.
    stack: list[tuple[int, bytes]] = []
    for h in leaf_hashes:
        height, cur = 0, h
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            cur = node_hash(left, cur)
            height += 1
        stack.append((height, cur))
    root = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of entries (each is hashed with :func:`leaf_hash` first)."""
    return root_from_leaf_hashes([leaf_hash(d) for d in leaves])


def _path(m: int, hashes: Sequence[bytes], begin: int, end: int, out: list[bytes]) -> None:
    # RFC 9162 §2.1.3.1 PATH(m, D[n]); m is relative to begin.
    n = end - begin
    if n <= 1:
        return
    k = largest_power_of_two_below(n)
    if m < k:
        _path(m, hashes, begin, begin + k, out)
        out.append(_mth(hashes, begin + k, end))
    else:
        _path(m - k, hashes, begin + k, end, out)
        out.append(_mth(hashes, begin, begin + k))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path for ``leaves[index]`` in the tree of all ``leaves`` (entry bytes)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of size {len(leaves)}")
    hashes = [leaf_hash(d) for d in leaves]
    out: list[bytes] = []
    _path(index, hashes, 0, len(hashes), out)
    return out


def _subproof(m: int, hashes: Sequence[bytes], begin: int, end: int, whole: bool, out: list[bytes]) -> None:
    # RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b); m is relative to begin.
    n = end - begin
    if m == n:
        if not whole:
            out.append(_mth(hashes, begin, end))
        return
    k = largest_power_of_two_below(n)
    if m <= k:
        _subproof(m, hashes, begin, begin + k, whole, out)
        out.append(_mth(hashes, begin + k, end))
    else:
        _subproof(m - k, hashes, begin + k, end, False, out)
        out.append(_mth(hashes, begin, begin + k))


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) for the tree of all ``leaves``; empty when old_size is 0 or n."""
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} is outside 0..{n}")
    if old_size in (0, n):
        return []
    hashes = [leaf_hash(d) for d in leaves]
    out: list[bytes] = []
    _subproof(old_size, hashes, 0, n, True, out)
    return out


def _ok_hash(h: bytes) -> bool:
    return isinstance(h, bytes | bytearray) and len(h) == HASH_SIZE


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show ``leaf_hash`` at ``index`` in the tree with ``root``?"""
    if not (_ok_hash(leaf_hash) and _ok_hash(root) and all(_ok_hash(p) for p in proof)):
        return False
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree ``old_root`` is a prefix of ``new_root``?"""
    if not (_ok_hash(old_root) and _ok_hash(new_root) and all(_ok_hash(p) for p in proof)):
        return False
    if old_size < 0 or new_size < old_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one; a non-empty proof is malformed (as transparency-dev rules).
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
