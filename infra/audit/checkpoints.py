"""Signed checkpoints: the ledger vouches for its tree, and copies leave the database.

Every `checkpoint_every_events` events or `checkpoint_every_seconds` (whichever comes
first, once the tree grew) the writer signs the tree's size and root and a commitment
to every stream's head (format: infra/audit/signed.py) with the operator's Ed25519
key, and stores it three ways: in the ledger's checkpoint table (for exports), in the
checkpoint file and on the checkpoint topic (for `verify`: copies someone who can
write the database cannot rewrite). Before signing it proves that the tree it signs
extends the one it signed last (an RFC 6962 consistency proof), so a rewritten past
is refused, never vouched for.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.audit import proofs, signed
from infra.audit.store import AuditStore
from infra.settings import Settings

if TYPE_CHECKING:
    from infra.bootstrap import Wiring


class KeyProblem(ValueError):
    """A signing or public key that cannot be read."""


class TreeAltered(RuntimeError):
    """The stored tree no longer extends the last signed checkpoint."""


# -- keys --------------------------------------------------------------------------


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_from_pem(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"{where} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{where} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The operator's key from DEALLEDGER_SIGNING_KEY or _FILE; None when neither is set."""
    if settings.signing_key is not None:
        return _key_from_pem(
            settings.signing_key.get_secret_value().encode("utf-8"), "DEALLEDGER_SIGNING_KEY"
        )
    if settings.signing_key_file is not None:
        try:
            pem = settings.signing_key_file.read_bytes()
        except OSError as exc:
            raise KeyProblem(f"cannot read the signing key file: {exc}") from None
        return _key_from_pem(pem, str(settings.signing_key_file))
    return None


def public_key_from_text(text: str) -> bytes:
    """A public key given as base64 of its 32 raw bytes, or as a PEM file's path or text."""
    text = text.strip()
    if "BEGIN PUBLIC KEY" not in text and not Path(text).is_file():
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise KeyProblem("a public key is 32 bytes in base64, or a PEM file")
        return raw
    pem = text.encode() if "BEGIN PUBLIC KEY" in text else Path(text).read_bytes()
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise KeyProblem(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(f"a {type(key).__name__}, not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def trusted_public_key(settings: Settings) -> bytes | None:
    if settings.checkpoint_public_key:
        return public_key_from_text(settings.checkpoint_public_key)
    key = signing_key(settings)
    return None if key is None else public_raw(key)


# -- the stored tree, read a few rows at a time ----------------------------------------


class StoredTree:
    """Roots and proofs from the tree the store keeps: each answer costs one query
    for the O(log n) perfect-subtree hashes it needs."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    def with_nodes(self, compute: Callable[[proofs.Subtree], Any]) -> Any:
        # The nodes a proof needs depend only on sizes and indices, never on hash
        # values: a first pass collects them, one query fetches them, a second computes.
        wanted: list[tuple[int, int]] = []

        def collect(level: int, index: int) -> bytes:
            wanted.append((level, index))
            return bytes(32)

        compute(proofs.subtree_from_nodes(collect))
        found = self.store.nodes(wanted)

        def node(level: int, index: int) -> bytes:
            try:
                return found[(level, index)]
            except KeyError:
                raise TreeAltered(f"the stored tree lacks node ({level}, {index})") from None

        return compute(proofs.subtree_from_nodes(node))

    def root(self, size: int) -> bytes:
        if size == 0:
            return proofs.EMPTY_ROOT
        digest: bytes = self.with_nodes(lambda subtree: subtree(0, size))
        return digest

    def inclusion(self, index: int, size: int) -> list[bytes]:
        path: list[bytes] = self.with_nodes(
            lambda subtree: proofs.inclusion_proof(index, size, subtree)
        )
        return path

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        path: list[bytes] = self.with_nodes(
            lambda subtree: proofs.consistency_proof(old_size, new_size, subtree)
        )
        return path


# -- writing -------------------------------------------------------------------------


def heads_root(heads: Iterable[tuple[str, int, str]]) -> tuple[bytes, int]:
    leaves = [signed.head_leaf(stream, version, digest) for stream, version, digest in heads]
    return proofs.root(leaves), len(leaves)


def sign(
    key: Ed25519PrivateKey,
    *,
    tree_size: int,
    root: bytes,
    sealed_from: int,
    heads: tuple[bytes, int],
    now: datetime,
) -> dict[str, Any]:
    checkpoint: dict[str, Any] = {
        "format": signed.FORMAT,
        "tree_size": tree_size,
        "root": root.hex(),
        "sealed_from": sealed_from,
        "streams": heads[1],
        "heads_root": heads[0].hex(),
        "time": now.astimezone(UTC).isoformat(),
        "key_id": signed.key_id(public_raw(key)),
    }
    checkpoint["signature"] = base64.b64encode(key.sign(signed.message(checkpoint))).decode()
    return checkpoint


def append_to_file(path: Path, checkpoint: dict[str, Any]) -> None:
    """One line, appended and flushed to disk: the copy survives the process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (signed.line(checkpoint) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointWriter:
    def __init__(
        self,
        store: AuditStore,
        key: Ed25519PrivateKey,
        settings: Settings,
        *,
        publish: Callable[[dict[str, Any]], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.key = key
        self.settings = settings
        self.publish = publish
        self.now = now
        self.tree = StoredTree(store)
        self.public_key = public_raw(key)
        self.last: dict[str, Any] | None = self._newest_own()
        self._last_at = time.monotonic()

    def _newest_own(self) -> dict[str, Any] | None:
        """The newest checkpoint this key signed, from the ledger's table; one with a
        bad signature is ignored (it cannot be the writer's own)."""
        for body in self.store.newest_checkpoint_bodies():
            try:
                checkpoint = signed.parse(body)
            except ValueError:
                continue
            if signed.signature_problem(checkpoint, self.public_key) is None:
                return checkpoint
        return None

    def due(self) -> bool:
        grown = self.store.tree_size() - (self.last["tree_size"] if self.last else 0)
        if grown <= 0:
            return False
        waited = time.monotonic() - self._last_at
        return (
            grown >= self.settings.checkpoint_every_events
            or waited >= self.settings.checkpoint_every_seconds
        )

    def write(self) -> dict[str, Any] | None:
        """Signs the tree as it stands (None when it has not grown since the last)."""
        size = self.store.tree_size()
        if self.last is not None and size <= self.last["tree_size"]:
            if size < self.last["tree_size"]:
                raise TreeAltered(
                    f"the stored tree holds {size} events, fewer than the "
                    f"{signed.describe(self.last)}"
                )
            return None
        root = self.tree.root(size)
        if self.last is not None:
            old_size, old_root = self.last["tree_size"], bytes.fromhex(self.last["root"])
            if not proofs.verify_consistency(
                old_size, size, old_root, root, self.tree.consistency(old_size, size)
            ):
                raise TreeAltered(
                    f"the stored tree does not extend the {signed.describe(self.last)}: "
                    "refusing to sign it"
                )
        sealed_from = self.store.sealed_from()
        if sealed_from is None:
            raise TreeAltered("the store's seal record is gone: refusing to sign")
        checkpoint = sign(
            self.key,
            tree_size=size,
            root=root,
            sealed_from=sealed_from,
            heads=heads_root(self.store.heads_at(size)),
            now=self.now(),
        )
        self.store.keep_checkpoint(size, signed.line(checkpoint))
        if self.settings.checkpoint_file is not None:
            append_to_file(self.settings.checkpoint_file, checkpoint)
        if self.publish is not None:
            self.publish(checkpoint)
        self.last = checkpoint
        self._last_at = time.monotonic()
        return checkpoint

    def postpone(self) -> None:
        """After a refusal: try again only after the time interval, not every batch."""
        self._last_at = time.monotonic()

    def write_if_due(self) -> dict[str, Any] | None:
        return self.write() if self.due() else None


def anchor_for_export(
    wiring: Wiring, store: AuditStore
) -> tuple[dict[str, Any] | None, bytes | None]:
    """The checkpoint an export is anchored to, and its public key: with the signing
    key, a fresh one (so the bundle holds every event); else the newest the ledger
    kept that the configured public key verifies; else none (an unsigned bundle)."""
    writer = wiring.checkpoint_writer()
    if writer is not None:
        fresh = writer.write() or writer.last
        return fresh, writer.public_key
    if not wiring.settings.checkpoint_public_key:
        return None, None
    public_key = public_key_from_text(wiring.settings.checkpoint_public_key)
    for body in store.newest_checkpoint_bodies():
        try:
            checkpoint = signed.parse(body)
        except ValueError:
            continue
        if signed.signature_problem(checkpoint, public_key) is None:
            return checkpoint, public_key
    return None, None


# -- reading the outside copies ----------------------------------------------------------


@dataclass(frozen=True)
class Outside:
    """Checkpoints read from a copy outside the database, and what could not be read."""

    checkpoints: list[dict[str, Any]]
    unreadable: list[str]
    source: str


def read_file(path: Path) -> Outside:
    checkpoints, unreadable = [], []
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                checkpoints.append(signed.parse(text))
            except ValueError as exc:
                unreadable.append(f"{path} line {number}: {exc}")
    return Outside(checkpoints, unreadable, str(path))


def read_topic(settings: Settings, timeout: float = 15.0) -> Outside:
    """Every checkpoint on the checkpoint topic, from its first offset to its end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout * 1000),
    )
    checkpoints, unreadable = [], []
    try:
        if consumer.partitions_for_topic(settings.checkpoints_topic) is None:
            return Outside([], [], f"topic {settings.checkpoints_topic}")
        partition = TopicPartition(settings.checkpoints_topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        deadline = time.monotonic() + timeout
        while consumer.position(partition) < end and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    try:
                        checkpoints.append(signed.parse(record.value.decode("utf-8")))
                    except (ValueError, UnicodeDecodeError) as exc:
                        unreadable.append(f"offset {record.offset}: {exc}")
        if consumer.position(partition) < end:
            unreadable.append(f"read only up to offset {consumer.position(partition)} of {end}")
    finally:
        consumer.close()
    return Outside(checkpoints, unreadable, f"topic {settings.checkpoints_topic}")
