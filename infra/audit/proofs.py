"""Merkle tree proofs (RFC 6962 / RFC 9162, SHA-256) and Ed25519 verification (RFC 8032).

Standard library only: audit bundles ship this file and auditors run it under
`python3 -I` with nothing installed, so it must not import from the project either.
Verifiers return False, never raise, on any malformed input an adversary could supply;
generators raise ValueError on bad arguments, since only the trusted side calls them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Subtree = Callable[[int, int], bytes]
"""`subtree(lo, hi)` -> MTH(D[lo:hi]), the root of the leaf range [lo, hi)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2): where RFC 6962 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes. Folding pairs level by level and carrying an odd last node
    up unchanged builds exactly the tree RFC 6962's split at the largest power of two does."""
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    sha = hashlib.sha256
    while len(level) > 1:
        pairs = iter(level)
        folded = [sha(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
        if len(level) & 1:
            folded.append(level[-1])
        level = folded
    return level[0]


class Frontier:
    """Append-only accumulator keeping only the perfect subtrees on the right edge:
    one hash per set bit of the size, largest (leftmost) first."""

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> list[bytes]:
        """Adds a leaf; returns the perfect subtrees it completes, level 1 upwards (the
        one at level L is node (L, index >> L) of the leaf at `index`)."""
        carry, n = leaf_hash, self._size
        completed = []
        # Each trailing 1 bit of the old size is a peak the new leaf completes a pair with.
        while n & 1:
            carry = node_hash(self._peaks.pop(), carry)
            completed.append(carry)
            n >>= 1
        self._peaks.append(carry)
        self._size += 1
        return completed

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        acc = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            acc = node_hash(peak, acc)
        return acc


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, D[size]), siblings ordered from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    siblings: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            siblings.append(subtree(mid, hi))
            hi = mid
        else:
            siblings.append(subtree(lo, mid))
            lo = mid
    siblings.reverse()  # collected root-down; the RFC recursion emits them leaf-up
    return siblings


def consistency_proof(old_size: int, new_size: int, subtree: Subtree) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(old_size, D[new_size]); empty when old_size is 0 or equal,
    since every tree extends the empty tree and itself."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    nodes: list[bytes] = []
    lo, hi, whole_old_tree = 0, new_size, True
    while hi != old_size:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            nodes.append(subtree(mid, hi))
            hi = mid
        else:
            nodes.append(subtree(lo, mid))
            lo, whole_old_tree = mid, False
    if not whole_old_tree:
        # The verifier knows the old root only when it is this subtree itself.
        nodes.append(subtree(lo, hi))
    nodes.reverse()
    return nodes


def subtree_from_nodes(node: Callable[[int, int], bytes]) -> Subtree:
    """A `subtree` over stored perfect-subtree hashes: `node(level, i)` is the root of
    leaves [i * 2**level, (i + 1) * 2**level)."""

    def subtree(lo: int, hi: int) -> bytes:
        n = hi - lo
        if lo < 0 or n < 1:
            raise ValueError(f"empty or negative leaf range [{lo}, {hi})")
        if n & (n - 1) == 0 and lo % n == 0:
            return node(n.bit_length() - 1, lo // n)
        mid = lo + _split(n)
        return node_hash(subtree(lo, mid), subtree(mid, hi))

    return subtree


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _hashes(proof: object) -> list[bytes] | None:
    if not isinstance(proof, list | tuple) or not all(_is_hash(p) for p in proof):
        return None
    return [bytes(p) for p in proof]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2. `leaf` is the leaf HASH (leaf_hash(data)), as in `root()`."""
    path = _hashes(proof)
    if path is None or not (_is_hash(leaf) and _is_hash(root) and _is_size(index)):
        return False
    if not _is_size(size) or index >= size:
        return False
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip the levels where this node has no right sibling: it is carried up as is.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, which covers 0 < old_size < new_size. Outside that range:
    equal sizes need an empty proof and equal roots; old_size 0 needs an empty proof and
    old_root == EMPTY_ROOT (the empty tree is a prefix of every tree, and a size-0 tree
    can have no other root)."""
    path = _hashes(proof)
    if path is None or not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    if not (_is_size(old_size) and _is_size(new_size)) or old_size > new_size:
        return False
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not path and old_root == new_root
    if not path:
        return False
    if old_size & (old_size - 1) == 0:
        # The old tree is then a node of the new one, so the proof omits its root.
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# Ed25519 (RFC 8032). Points are extended homogeneous (X, Y, Z, T), x = X/Z, y = Y/Z,
# x*y = T/Z, so additions need no field inversion; only the final encoding inverts.
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]
_IDENTITY: _Point = (0, 1, 1, 0)


def _add(p: _Point, q: _Point) -> _Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(p: _Point) -> _Point:
    # RFC 8032 §5.1.4's dedicated doubling: about half the cost of _add(p, p).
    a, b = p[0] * p[0] % _P, p[1] * p[1] % _P
    c = 2 * p[2] * p[2] % _P
    h = a + b
    e = h - (p[0] + p[1]) ** 2
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(scalar: int, p: _Point) -> _Point:
    q = _IDENTITY
    for bit in bin(scalar)[2:]:
        q = _double(q)
        if bit == "1":
            q = _add(q, p)
    return q


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None  # non-canonical encoding
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None  # y is not on the curve
    return _P - x if (x & 1) != sign else x


def _decode(s: bytes) -> _Point | None:
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def _encode(p: _Point) -> bytes:
    zinv = pow(p[2], _P - 2, _P)
    x, y = p[0] * zinv % _P, p[1] * zinv % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


_BY = 4 * pow(5, _P - 2, _P) % _P
_BX = _recover_x(_BY, 0)
assert _BX is not None
_BASE: _Point = (_BX, _BY, 1, _BX * _BY % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 §5.1.7, cofactorless: [S]B == R + [k]A, as OpenSSL checks it."""
    if not all(isinstance(v, bytes | bytearray) for v in (public_key, message, signature)):
        return False
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a, r = _decode(public_key), _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    digest = hashlib.sha512(bytes(signature[:32]) + public_key + message).digest()
    k = int.from_bytes(digest, "little") % _L
    return _encode(_mul(s, _BASE)) == _encode(_add(r, _mul(k, a)))
