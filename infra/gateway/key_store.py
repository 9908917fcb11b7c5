"""API keys stored hashed in the ledger's own database (PostgreSQL, or the embedded
SQLite event store file), plus bootstrap keys configured in settings (memory only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.permissions import INTERNAL
from domain.values import Actor, ActorKind, Role
from infra.gateway.keys import NewKey, generate_key, key_from_text
from infra.store.databases import Database, PostgresDatabase
from infra.store.ddl import serialised_ddl

TABLE = "api_keys"
DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    key_id TEXT PRIMARY KEY,
    salt TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)"""
_COLUMNS = "key_id, salt, secret_hash, actor_kind, actor_id, role, label, created_at, revoked_at"


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    salt: str
    secret_hash: str
    actor: Actor
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    bootstrap: bool = False  # configured in settings, not stored

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def actor_from_spec(spec: str) -> Actor:
    """``partner:CODE`` or ``ROLE:USER`` (role: channel_manager, sales, auditor, admin)."""
    kind, _, name = spec.partition(":")
    if not name.strip():
        raise ValueError(f"{spec!r}: expected partner:CODE or ROLE:USER")
    if kind == "partner":
        return Actor.partner(name)
    try:
        role = Role(kind)
    except ValueError:
        raise ValueError(f"{spec!r}: unknown role {kind!r}") from None
    if role not in INTERNAL:
        named = [r.value for r in Role if r in INTERNAL]  # in the enum's order
        raise ValueError(f"{spec!r}: users take one of {named}")
    return Actor.user(name, role)


def bootstrap_keys(configured: Mapping[str, str], now: datetime) -> dict[str, StoredKey]:
    """Settings' `api_keys` (full key -> principal spec), hashed in memory."""
    keys: dict[str, StoredKey] = {}
    for text, spec in configured.items():
        new = key_from_text(text)
        keys[new.key_id] = _stored(new, actor_from_spec(spec), "bootstrap", now, bootstrap=True)
    return keys


def _stored(
    new: NewKey, actor: Actor, label: str, now: datetime, *, bootstrap: bool = False
) -> StoredKey:
    return StoredKey(
        new.key_id, new.salt, new.secret_hash, actor, label, now, None, bootstrap=bootstrap
    )


def _time(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


class KeyStore:
    """Create, find, list and revoke stored API keys."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._table_ready = False

    def ensure_table(self) -> None:
        if self._table_ready:
            return
        if isinstance(self.db, PostgresDatabase):
            with self.db.connection() as conn, serialised_ddl(conn), conn.transaction():
                conn.execute(DDL)
        else:
            with self.db.transaction() as store:
                store.execute(DDL)
        self._table_ready = True

    def create(self, actor: Actor, label: str = "", now: datetime | None = None) -> str:
        """Stores a new key for `actor` and returns it in full (shown this once)."""
        if actor.kind is ActorKind.SYSTEM:
            raise ValueError("keys are for partners and users, not the system")
        self.ensure_table()
        new = generate_key()
        created = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
        with self.db.transaction() as store:
            store.execute(
                f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)",
                (
                    new.key_id,
                    new.salt,
                    new.secret_hash,
                    actor.kind.value,
                    actor.id,
                    actor.role.value,
                    label,
                    created,
                ),
            )
        return new.full_key

    def get(self, key_id: str) -> StoredKey | None:
        self.ensure_table()
        with self.db.reading() as store:
            row = store.fetchone(f"SELECT {_COLUMNS} FROM {TABLE} WHERE key_id = %s", (key_id,))
        return None if row is None else _row(row)

    def list(self) -> list[StoredKey]:
        self.ensure_table()
        with self.db.reading() as store:
            rows = store.fetchall(f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY created_at, key_id")
        return [_row(row) for row in rows]

    def revoke(self, key_id: str, now: datetime | None = None) -> bool:
        """Revokes an active key; False when there is no such active key."""
        self.ensure_table()
        revoked = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
        with self.db.transaction() as store:
            count = store.execute(
                f"UPDATE {TABLE} SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
                (revoked, key_id),
            )
        return count > 0


def _row(row: tuple[object, ...]) -> StoredKey:
    key_id, salt, secret_hash, kind, actor_id, role, label, created, revoked = row
    actor = Actor(ActorKind(str(kind)), str(actor_id), Role(str(role)))
    created_at = datetime.fromisoformat(str(created))
    return StoredKey(
        str(key_id), str(salt), str(secret_hash), actor, str(label), created_at, _time(revoked)
    )
