"""Who is calling: API keys resolved to a `Principal`, reusable without HTTP.

The HTTP layer reads the key from ``Authorization: Bearer <key>`` or ``X-API-Key``;
other edges (the Kafka command consumer) call `Authenticator.resolve` with a key id
and secret, or `principal_for_key_id` when the channel itself is trusted. Either
way every command's actor comes from the principal, never from a request body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from commands.models import ActorIn
from domain.values import Actor, ActorKind, Role
from infra.gateway.key_store import KeyStore, StoredKey
from infra.gateway.keys import burn_comparison, parse_key, secret_matches

IDEMPOTENCY_KEY_MAX = 100


class Unauthenticated(Exception):
    """No key, a malformed key, an unknown or revoked key, or a wrong secret (401)."""

    code = "unauthenticated"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # missing | malformed | unknown | revoked


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a partner, or an internal user with a role."""

    key_id: str
    actor: Actor

    @property
    def role(self) -> Role:
        return self.actor.role

    @property
    def is_partner(self) -> bool:
        return self.actor.kind is ActorKind.PARTNER

    @property
    def partner_code(self) -> str | None:
        return self.actor.id if self.is_partner else None

    def actor_in(self) -> ActorIn:
        return ActorIn.of(self.actor)

    def __str__(self) -> str:
        return f"{self.actor} (key {self.key_id})"


def scoped_command_id(principal: Principal, idempotency_key: str) -> str:
    """The ledger's command id for a client's idempotency key.

    Keys are scoped by the acting partner or user, so one caller's keys can neither
    collide with nor reveal another's; the same key sent over HTTP and over the
    command topic by the same principal names the same command."""
    return f"{principal.actor.kind.value}:{principal.actor.id}/{idempotency_key}"


class Authenticator:
    """Resolves presented API keys against the key table and the bootstrap keys."""

    def __init__(self, keys: KeyStore, bootstrap: Mapping[str, StoredKey] | None = None) -> None:
        self.keys = keys
        self.bootstrap = dict(bootstrap or {})

    def _find(self, key_id: str) -> StoredKey | None:
        found = self.bootstrap.get(key_id)
        return found if found is not None else self.keys.get(key_id)

    def authenticate(self, presented: str | None) -> Principal:
        """The principal of a full key ``dl_<id>_<secret>``; raises Unauthenticated."""
        if not presented:
            raise Unauthenticated(
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key`",
                "missing",
            )
        parsed = parse_key(presented)
        if parsed is None:
            raise Unauthenticated(
                "the API key is malformed (expected dl_<id>_<secret>)", "malformed"
            )
        return self.resolve(parsed.key_id, parsed.secret)

    def resolve(self, key_id: str, secret: str) -> Principal:
        """The principal of key `key_id` if `secret` is its secret; raises Unauthenticated."""
        stored = self._find(key_id)
        if stored is None:
            burn_comparison(secret)
            raise Unauthenticated("the API key is not valid", "unknown")
        if not secret_matches(secret, stored.salt, stored.secret_hash):
            raise Unauthenticated("the API key is not valid", "unknown")
        if not stored.active:
            raise Unauthenticated("the API key has been revoked", "revoked")
        return Principal(stored.key_id, stored.actor)

    def principal_for_key_id(self, key_id: str) -> Principal:
        """For a trusted channel that names a key without its secret (e.g. a command
        topic whose producers are authenticated by the broker); the key must be active."""
        stored = self._find(key_id)
        if stored is None:
            raise Unauthenticated(f"no API key {key_id}", "unknown")
        if not stored.active:
            raise Unauthenticated(f"API key {key_id} has been revoked", "revoked")
        return Principal(stored.key_id, stored.actor)
