"""API key format and hashing (pure: no I/O).

A key reads ``dl_<key id>_<secret>``. The key id is public (it names the key in
listings, logs and the Kafka command envelope); the secret is shown once when the
key is created and only its salted HMAC-SHA256 is ever stored. Secrets are 256
random bits, so a fast keyed hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "dl"
KEY_PATTERN = re.compile(r"^dl_([a-z0-9]{8,32})_([A-Za-z0-9_-]{16,128})$")
KEY_ID_PATTERN = re.compile(r"^[a-z0-9]{8,32}$")
SALT_BYTES = 16

# Compared against when the key id is unknown, so a miss costs as much as a hit.
_DUMMY_SALT = bytes(SALT_BYTES)
_DUMMY_HASH = hmac.new(_DUMMY_SALT, b"", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PresentedKey:
    """A key as a client presented it, split into its public id and its secret."""

    key_id: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"PresentedKey(key_id={self.key_id!r}, secret=***)"


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str
    salt: str  # hex
    secret_hash: str  # hex HMAC-SHA256(salt, secret)

    @property
    def full_key(self) -> str:
        return format_key(self.key_id, self.secret)


def format_key(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def parse_key(text: str) -> PresentedKey | None:
    """The id and secret of a well-formed key, or None."""
    match = KEY_PATTERN.match(text.strip())
    if match is None:
        return None
    return PresentedKey(match.group(1), match.group(2))


def hash_secret(secret: str, salt_hex: str) -> str:
    return hmac.new(bytes.fromhex(salt_hex), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, salt_hex: str, expected_hash: str) -> bool:
    """Constant-time comparison of the presented secret with the stored hash."""
    try:
        actual = hash_secret(secret, salt_hex)
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected_hash)


def burn_comparison(secret: str) -> None:
    """Do the work of a comparison for a key id that does not exist."""
    hmac.compare_digest(hash_secret(secret, _DUMMY_SALT.hex()), _DUMMY_HASH)


def generate_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(SALT_BYTES)
    return NewKey(key_id, secret, salt, hash_secret(secret, salt))


def key_from_text(text: str) -> NewKey:
    """A configured (bootstrap) key given in full, hashed like a generated one."""
    presented = parse_key(text)
    if presented is None:
        raise ValueError("API keys look like dl_<id>_<secret> (id: 8-32 of a-z0-9)")
    salt = secrets.token_hex(SALT_BYTES)
    return NewKey(presented.key_id, presented.secret, salt, hash_secret(presented.secret, salt))
