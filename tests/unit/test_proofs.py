"""Merkle proofs and Ed25519 verification in `infra.audit.proofs`, checked against
references written here from the RFC text, RFC 8032's vectors and `cryptography`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.audit.proofs import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    ed25519_verify,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    subtree_from_nodes,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
L = 2**252 + 27742317777372353535851937790883648493


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, recursive, exactly as written."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _split(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


@cache
def leaves() -> list[bytes]:
    return [leaf_hash(b"entry %d" % i) for i in range(MAX_LEAVES)]


@cache
def tree_root(size: int) -> bytes:
    return mth(leaves()[:size])


@cache
def perfect_nodes() -> dict[tuple[int, int], bytes]:
    """(level, index) -> hash of each perfect subtree, built bottom up, not via `root`."""
    nodes = {(0, i): h for i, h in enumerate(leaves())}
    level = 1
    while (1 << level) <= MAX_LEAVES:
        for i in range(MAX_LEAVES >> level):
            nodes[level, i] = node_hash(nodes[level - 1, 2 * i], nodes[level - 1, 2 * i + 1])
        level += 1
    return nodes


def from_leaves(lo: int, hi: int) -> bytes:
    return mth(leaves()[lo:hi])


from_nodes = subtree_from_nodes(lambda level, index: perfect_nodes()[level, index])


def path_shape(m: int, n: int) -> tuple[str, ...]:
    """Which side each sibling of RFC 6962 PATH(m, D[n]) is on, leaf up."""
    if n == 1:
        return ()
    k = _split(n)
    if m < k:
        return (*path_shape(m, k), "right")
    return (*path_shape(m - k, n - k), "left")


def proof_shape(m: int, n: int, whole: bool = True) -> tuple[str, ...]:
    """The RFC 6962 SUBPROOF(m, D[n], b) recursion, as sides instead of hashes."""
    if m == n:
        return () if whole else ("old",)
    k = _split(n)
    if m <= k:
        return (*proof_shape(m, k, whole), "right")
    return (*proof_shape(m - k, n - k, False), "left")


def flip(value: bytes, bit: int) -> bytes:
    bit %= 8 * len(value)
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_hashes_and_known_roots() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT
    a, b, c, d, e = (leaf_hash(x) for x in (b"a", b"b", b"c", b"d", b"e"))
    assert root([a]) == a
    assert root([a, b, c]) == node_hash(node_hash(a, b), c)
    ab_cd = node_hash(node_hash(a, b), node_hash(c, d))
    assert root([a, b, c, d]) == ab_cd
    assert root([a, b, c, d, e]) == node_hash(ab_cd, e)


def test_root_and_frontier_match_reference_for_every_small_size() -> None:
    frontier = Frontier()
    for size in range(71):
        assert frontier.size == size
        assert root(leaves()[:size]) == frontier.root() == tree_root(size)
        frontier.append(leaves()[size])


@settings(max_examples=25, deadline=None)
@given(st.integers(71, 5000))
def test_root_and_frontier_match_reference_for_random_sizes(size: int) -> None:
    data = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    frontier = Frontier()
    for h in data:
        frontier.append(h)
    assert frontier.size == size
    assert root(data) == frontier.root() == mth(data)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_inclusion_proofs(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_LEAVES), "size")
    index = data.draw(st.integers(0, size - 1), "index")
    bit = data.draw(st.integers(0, 255), "bit")
    leaf, top = leaves()[index], tree_root(size)
    proof = inclusion_proof(index, size, from_leaves)
    assert inclusion_proof(index, size, from_nodes) == proof
    assert verify_inclusion(leaf, index, size, proof, top)

    def ok(p: Sequence[bytes], i: int = index, n: int = size, r: bytes = top) -> bool:
        return verify_inclusion(leaf, i, n, p, r)

    for i in range(len(proof)):
        assert not ok([*proof[:i], flip(proof[i], bit), *proof[i + 1 :]])
    assert not verify_inclusion(flip(leaf, bit), index, size, proof, top)
    assert not ok(proof, r=flip(top, bit))
    assert not any(ok(proof, i=other) for other in range(size + 2) if other != index)
    # The root commits to the leaf's path, not to the size: another size whose tree puts
    # the leaf on the same path accepts the same proof (e.g. leaf 0 of sizes 3 and 4).
    for other in range(index + 1, 2 * size + 2):
        if other != size:
            assert ok(proof, n=other) == (path_shape(index, other) == path_shape(index, size))
    assert not ok(proof, n=0)
    _rejects_reshaped(ok, proof)


def _rejects_reshaped(ok: Callable[..., bool], proof: list[bytes]) -> None:
    """A proof with a hash added, dropped or cut short (or grown) never verifies."""
    assert not ok([*proof, bytes(32)])
    assert not ok([bytes(32), *proof])
    if proof:
        assert not ok(proof[:-1])
        assert not ok(proof[1:])
        assert not ok([*proof[:-1], proof[-1][:31]])
        assert not ok([*proof[:-1], proof[-1] + b"\x00"])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_consistency_proofs(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, MAX_LEAVES), "new")
    old = data.draw(st.integers(0, new), "old")
    bit = data.draw(st.integers(0, 255), "bit")
    old_root, new_root = tree_root(old), tree_root(new)
    proof = consistency_proof(old, new, from_leaves)
    assert consistency_proof(old, new, from_nodes) == proof
    assert verify_consistency(old, new, old_root, new_root, proof)

    def ok(p: Sequence[bytes], m: int = old, n: int = new) -> bool:
        return verify_consistency(m, n, old_root, new_root, p)

    for i in range(len(proof)):
        assert not ok([*proof[:i], flip(proof[i], bit), *proof[i + 1 :]])
    assert not verify_consistency(old, new, flip(old_root, bit), new_root, proof)
    if old:  # an empty old tree proves nothing about the new root (see verify_consistency)
        assert not verify_consistency(old, new, old_root, flip(new_root, bit), proof)

    def expected(m: int, n: int) -> bool:
        if m > n:
            return False
        if m == 0:
            return not proof and old_root == EMPTY_ROOT and (n > 0 or new_root == EMPTY_ROOT)
        if m == n:
            return not proof and old_root == new_root
        # As with inclusion, the proof binds the old tree's path in the new one, not sizes.
        return bool(proof) and proof_shape(m, n) == proof_shape(old, new)

    for other in range(2 * new + 2):
        if other != old:
            assert ok(proof, m=other) == expected(other, new), other
        if other != new:
            assert ok(proof, n=other) == expected(old, other), other
    _rejects_reshaped(ok, proof)


def test_proof_edge_cases() -> None:
    one = leaves()[0]
    assert inclusion_proof(0, 1, from_leaves) == []
    assert verify_inclusion(one, 0, 1, [], one)
    assert not verify_inclusion(one, 1, 1, [], one)
    assert not verify_inclusion(one, 0, 0, [], EMPTY_ROOT)
    assert not verify_inclusion(one, -1, 1, [], one)
    assert consistency_proof(0, 5, from_leaves) == consistency_proof(5, 5, from_leaves) == []
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, one, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, tree_root(5), [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, tree_root(5), [one])
    assert not verify_consistency(5, 5, tree_root(5), tree_root(5), [one])
    assert not verify_consistency(5, 4, tree_root(5), tree_root(4), [])
    assert not verify_consistency(3, 5, tree_root(3), tree_root(5), [])
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(3, 3, from_leaves)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(4, 3, from_leaves)
    good = inclusion_proof(2, 7, from_leaves)
    bad_proofs: list[object] = [None, "proof", b"x" * 32, [None], [*good[:-1], "x" * 32]]
    for bad in bad_proofs:
        assert not verify_inclusion(leaves()[2], 2, 7, bad, tree_root(7))  # type: ignore[arg-type]
        assert not verify_consistency(3, 7, tree_root(3), tree_root(7), bad)  # type: ignore[arg-type]
    assert not verify_inclusion(leaves()[2], 2, 7, good, None)  # type: ignore[arg-type]
    assert not verify_inclusion(leaves()[2], 2.0, 7, good, tree_root(7))  # type: ignore[arg-type]


# RFC 8032 §7.1 TEST 1, 2 and 3: public key, message, signature.
RFC8032_VECTORS = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
        "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290"
        "ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("key", "message", "signature"), RFC8032_VECTORS)
def test_ed25519_rfc8032_vectors(key: str, message: str, signature: str) -> None:
    pk, msg, sig = bytes.fromhex(key), bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519_verify(pk, msg, sig)
    assert not ed25519_verify(pk, msg + b"\x00", sig)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=300),
    bit=st.integers(0, 511),
)
def test_ed25519_against_cryptography(seed: bytes, message: bytes, bit: int) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pk = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sig = key.sign(message)
    assert ed25519_verify(pk, message, sig)
    assert not ed25519_verify(pk, flip(message, bit) if message else b"\x00", sig)
    assert not ed25519_verify(pk, message, flip(sig, bit))
    assert not ed25519_verify(flip(pk, bit), message, sig)
    # S + L is the same scalar mod L, so only the canonical-S rule rejects it.
    s = int.from_bytes(sig[32:], "little")
    assert not ed25519_verify(pk, message, sig[:32] + (s + L).to_bytes(32, "little"))


def test_ed25519_rejects_malformed_input_without_raising() -> None:
    pk, message, sig = (bytes.fromhex(v) for v in RFC8032_VECTORS[1])
    for n in (0, 31, 33, 64):
        assert not ed25519_verify(pk[:1] * n, message, sig)
    for n in (0, 32, 63, 65, 128):
        assert not ed25519_verify(pk, message, sig[:1] * n)
    not_bytes: list[object] = [None, "x" * 32, 7]
    for bad in not_bytes:
        assert not ed25519_verify(bad, message, sig)  # type: ignore[arg-type]
        assert not ed25519_verify(pk, bad, sig)  # type: ignore[arg-type]
        assert not ed25519_verify(pk, message, bad)  # type: ignore[arg-type]
    p = 2**255 - 19
    non_canonical_y, negative_zero_x = (
        p.to_bytes(32, "little"),
        (1 | 1 << 255).to_bytes(32, "little"),
    )
    for point in (non_canonical_y, negative_zero_x):
        assert not ed25519_verify(point, message, sig)
        assert not ed25519_verify(pk, message, point + sig[32:])
