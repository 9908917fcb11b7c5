"""Personal fields encrypted per data subject, at the event store's edge.

The ledger's mapper seals every personal field (domain/privacy.py names them) with
AES-256-GCM under the live key of the event's stream before the event is stored, so
the stored state, and so every hash, leaf and checkpoint over it, holds ciphertext
only. Reading decodes a sealed field back to its text while its key exists and to
`[erased]` once the subject is erased. Snapshots seal the same parts of the state.

Keys come from the store's key table through a `Keyring` (commands/keyring.py).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, Transcoding
from eventsourcing.utils import resolve_topic

from commands.keyring import Key, Keyring
from domain.privacy import ERASED

NONCE_BYTES = 12


class MissingDataKey(RuntimeError):
    """A personal field was about to be stored for a stream that has no key."""


class Sealed:
    """A personal field as stored: the key's id and nonce + AES-GCM ciphertext."""

    __slots__ = ("blob", "key_id")

    def __init__(self, key_id: UUID, blob: bytes) -> None:
        self.key_id = key_id
        self.blob = blob

    @classmethod
    def of(cls, text: str, key: Key) -> Sealed:
        key_id, secret = key
        nonce = os.urandom(NONCE_BYTES)
        # The key id is the associated data: a sealed value moved under another key
        # does not open.
        return cls(key_id, nonce + AESGCM(secret).encrypt(nonce, text.encode(), key_id.bytes))

    def to_json(self) -> dict[str, str]:
        return {"k": self.key_id.hex, "v": base64.b64encode(self.blob).decode("ascii")}


def opened(data: Mapping[str, str], keyring: Keyring) -> str:
    """A sealed field as stored (`{"k": key id hex, "v": base64}`): its text, or
    `[erased]` once the key is gone. Every read of personal text comes here (the
    history reads thousands at a time: no UUID or Sealed object is built)."""
    key_hex = data["k"]
    cipher = keyring.cipher(key_hex)
    if cipher is None:
        return ERASED
    try:
        blob = binascii.a2b_base64(data["v"], strict_mode=True)
        plain = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], bytes.fromhex(key_hex))
    except (InvalidTag, binascii.Error):
        raise ValueError(f"personal data under key {key_hex} fails its check") from None
    return plain.decode()


class SealedAsDict(Transcoding):
    """Stored as {"k": key id, "v": base64}; read back as the text, or `[erased]`."""

    type = Sealed
    name = "sealed"

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def encode(self, obj: Sealed) -> dict[str, str]:
        return obj.to_json()

    def decode(self, data: dict[str, str]) -> str:
        return opened(data, self.keyring)


def personal_paths(event: Any) -> tuple[tuple[str, ...], ...]:
    """The paths into an event's attributes that hold personal data."""
    if isinstance(event, Snapshot):
        owner = resolve_topic(event.topic)
        return tuple(("state", *p.split(".")) for p in getattr(owner, "personal_state", ()))
    return tuple((f,) for f in getattr(type(event), "personal_fields", ()))


def _sealing(value: Any, path: tuple[str, ...], seal: Callable[[str], Sealed]) -> Any:
    if not path:
        # Empty text holds nothing personal and stays readable as it is.
        return seal(value) if isinstance(value, str) and value else value
    if not isinstance(value, dict):
        return value
    head, rest = path[0], path[1:]
    if head == "*":
        return {k: _sealing(v, rest, seal) for k, v in value.items()}
    if head not in value:
        return value
    return {**value, head: _sealing(value[head], rest, seal)}


class PersonalDataMapper(Mapper[UUID]):
    """The library's mapper, sealing personal fields on the way to the store."""

    def __init__(self, transcoder: Any, keyring: Keyring, **options: Any) -> None:
        super().__init__(transcoder, **options)
        self.keyring = keyring

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        paths = personal_paths(domain_event)
        if paths:
            key = self._key_of(domain_event)
            state = dict(vars(domain_event))
            for path in paths:
                state = _sealing(state, path, lambda text: Sealed.of(text, key))
            sealed = object.__new__(type(domain_event))
            object.__setattr__(sealed, "__dict__", state)
            domain_event = sealed
        return super().to_stored_event(domain_event)

    def reveal(self, data: Mapping[str, str]) -> str:
        """A sealed field as stored (its `_data_`): its text, or `[erased]`."""
        return opened(data, self.keyring)

    def is_erased(self, data: Mapping[str, str]) -> bool:
        """Whether a sealed field's key is gone, without opening it."""
        return self.keyring.is_erased(UUID(hex=data["k"]))

    def _key_of(self, event: Any) -> Key:
        stream = event.originator_id
        key = self.keyring.key_for(stream)
        if key is not None:
            return key
        # A snapshot taken outside the ledger's save (a tool's take_snapshot) of a
        # stream that never had personal data: its state names the subject.
        customer = event.state.get("customer") if isinstance(event, Snapshot) else None
        if customer is None:
            raise MissingDataKey(
                f"no data key for stream {stream}: personal data is saved through the ledger"
            )
        self.keyring.ensure({stream: customer.domain})
        key = self.keyring.live(stream)
        assert key is not None
        return key
