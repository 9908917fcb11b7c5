"""Signed checkpoints of the ledger tree: their format and their check.

Standard library only: this file travels in every audit bundle, beside the checker.
A checkpoint is one JSON object:

    format       "dealledger-checkpoint/1"
    tree_size    leaves in the ledger tree (sealed events) when it was signed
    root         the tree's RFC 6962 root hash at that size (hex)
    sealed_from  the ledger position from which every event is hashed and in the tree
    streams      streams with at least one sealed event at that size
    heads_root   RFC 6962 root over `head_leaf` of each such stream's last event, the
                 streams sorted by id: a commitment to every stream's head
    time         when it was signed (ISO-8601, UTC)
    key_id       the first 16 hex digits of SHA-256 over the raw public key
    signature    Ed25519 over `message(checkpoint)`, base64

`message` is the canonical JSON of every field but the signature (sorted keys, no
spaces). The ledger signs (infra/audit/checkpoints.py); anyone with the public key
checks with `problem`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import datetime
from typing import Any

try:  # inside the project
    from infra.audit import proofs
except ImportError:  # inside a bundle, or run as a script beside proofs.py
    import proofs  # type: ignore[import-not-found, no-redef]

FORMAT = "dealledger-checkpoint/1"
FIELDS = {
    "format",
    "tree_size",
    "root",
    "sealed_from",
    "streams",
    "heads_root",
    "time",
    "key_id",
    "signature",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")


def message(checkpoint: dict[str, Any]) -> bytes:
    body = {name: value for name, value in checkpoint.items() if name != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def line(checkpoint: dict[str, Any]) -> str:
    """How a checkpoint is written: to the file, the topic and the ledger's own table."""
    return json.dumps(checkpoint, sort_keys=True, separators=(",", ":"))


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def head_leaf(stream: str, version: int, chain_hash: str) -> bytes:
    # Tagged, so that a head leaf can never be taken for an event leaf.
    text = "\x1f".join(("dealledger-head/1", stream, str(version), chain_hash))
    return proofs.leaf_hash(text.encode("utf-8"))


def parse(text: str) -> dict[str, Any]:
    """One checkpoint from its line; ValueError when it is not one."""
    checkpoint = json.loads(text)
    if not isinstance(checkpoint, dict) or set(checkpoint) != FIELDS:
        raise ValueError("not a checkpoint: its fields differ")
    if checkpoint["format"] != FORMAT:
        raise ValueError(f"checkpoint format {checkpoint['format']!r} is not {FORMAT!r}")
    for name in ("tree_size", "sealed_from", "streams"):
        if type(checkpoint[name]) is not int or checkpoint[name] < 0:
            raise ValueError(f"checkpoint {name} is not a whole number")
    for name in ("root", "heads_root"):
        if not (isinstance(checkpoint[name], str) and _HEX64.fullmatch(checkpoint[name])):
            raise ValueError(f"checkpoint {name} is not a SHA-256 hex digest")
    if not (isinstance(checkpoint["key_id"], str) and _KEY_ID.fullmatch(checkpoint["key_id"])):
        raise ValueError("checkpoint key_id is malformed")
    if not isinstance(checkpoint["time"], str):
        raise ValueError("checkpoint time is not a string")
    moment = datetime.fromisoformat(checkpoint["time"])
    if moment.utcoffset() is None or moment.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise ValueError("checkpoint time is not in UTC")
    if not isinstance(checkpoint["signature"], str):
        raise ValueError("checkpoint signature is not a string")
    return checkpoint


def signature_problem(checkpoint: dict[str, Any], public_key: bytes) -> str | None:
    """Why this checkpoint is not signed by this key, or None when it is."""
    if checkpoint["key_id"] != key_id(public_key):
        return f"it names key {checkpoint['key_id']}, not {key_id(public_key)}"
    try:
        signature = base64.b64decode(checkpoint["signature"], validate=True)
    except binascii.Error:
        return "its signature is not base64"
    if not proofs.ed25519_verify(public_key, message(checkpoint), signature):
        return "its signature does not verify"
    return None


def describe(checkpoint: dict[str, Any]) -> str:
    return f"checkpoint of {checkpoint['tree_size']} events signed {checkpoint['time']}"
