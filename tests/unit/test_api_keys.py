from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.values import Actor, Role
from infra.gateway.key_store import KeyStore, actor_from_spec, bootstrap_keys
from infra.gateway.keys import generate_key, hash_secret, parse_key, secret_matches
from infra.gateway.principals import Authenticator, Principal, Unauthenticated, scoped_command_id
from infra.store.databases import SqliteDatabase

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(SqliteDatabase(tmp_path / "ledger.sqlite"))


def test_a_generated_key_reads_dl_id_secret_and_parses_back() -> None:
    new = generate_key()

    parsed = parse_key(new.full_key)

    assert new.full_key.startswith(f"dl_{new.key_id}_")
    assert parsed is not None
    assert (parsed.key_id, parsed.secret) == (new.key_id, new.secret)
    assert new.secret not in repr(parsed)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dl_",
        "dl_short_secretsecretsecret",
        "xx_0123456789ab_" + "s" * 40,
        "dl_UPPER123_" + "s" * 40,
    ],
)
def test_malformed_keys_do_not_parse(text: str) -> None:
    assert parse_key(text) is None


def test_the_same_secret_hashes_differently_under_each_salt_and_only_its_secret_matches() -> None:
    first, second = generate_key(), generate_key()

    assert hash_secret(first.secret, first.salt) == first.secret_hash
    assert hash_secret(first.secret, second.salt) != first.secret_hash
    assert secret_matches(first.secret, first.salt, first.secret_hash)
    assert not secret_matches(second.secret, first.salt, first.secret_hash)
    assert not secret_matches(first.secret, "not hex", first.secret_hash)


def test_a_stored_key_keeps_only_the_salted_hash_of_its_secret(
    keys: KeyStore, tmp_path: Path
) -> None:
    full = keys.create(Actor.partner("acme"), "portal", now=NOW)
    secret = full.split("_", 2)[2]

    with sqlite3.connect(tmp_path / "ledger.sqlite") as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()

    assert len(rows) == 1
    assert secret not in repr(rows)
    stored = keys.list()[0]
    assert (stored.actor, stored.label, stored.created_at) == (Actor.partner("acme"), "portal", NOW)


def test_a_key_resolves_to_its_principal_until_it_is_revoked(keys: KeyStore) -> None:
    auth = Authenticator(keys)
    full = keys.create(Actor.user("carol", Role.CHANNEL_MANAGER))
    key_id = full.split("_")[1]

    principal = auth.authenticate(full)
    assert principal == Principal(key_id, Actor.user("carol", Role.CHANNEL_MANAGER))
    assert auth.principal_for_key_id(key_id) == principal
    assert keys.revoke(key_id)
    assert not keys.revoke(key_id)
    with pytest.raises(Unauthenticated) as revoked:
        auth.authenticate(full)
    assert revoked.value.reason == "revoked"


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Bearer x", "malformed"),
        ("dl_0123456789ab_" + "s" * 43, "unknown"),
    ],
)
def test_absent_malformed_and_unknown_keys_are_unauthenticated(
    keys: KeyStore, presented: str | None, reason: str
) -> None:
    with pytest.raises(Unauthenticated) as refused:
        Authenticator(keys).authenticate(presented)

    assert refused.value.reason == reason


def test_a_known_key_id_with_a_wrong_secret_is_refused_like_an_unknown_key(
    keys: KeyStore,
) -> None:
    key_id = keys.create(Actor.partner("acme")).split("_")[1]

    with pytest.raises(Unauthenticated) as refused:
        Authenticator(keys).resolve(key_id, "s" * 43)

    assert (refused.value.reason, refused.value.message) == ("unknown", "the API key is not valid")


def test_settings_keys_resolve_without_touching_the_key_table(keys: KeyStore) -> None:
    full = "dl_bootstrap01_" + "s" * 40
    auth = Authenticator(keys, bootstrap_keys({full: "auditor:aud"}, NOW))

    principal = auth.authenticate(full)

    assert principal.actor == Actor.user("aud", Role.AUDITOR)
    assert keys.list() == []


@pytest.mark.parametrize(
    ("spec", "actor"),
    [
        ("partner:acme", Actor.partner("acme")),
        ("sales:sam", Actor.user("sam", Role.SALES)),
        ("admin:ops", Actor.user("ops", Role.ADMIN)),
    ],
)
def test_principal_specs_name_a_partner_or_a_user_with_a_role(spec: str, actor: Actor) -> None:
    assert actor_from_spec(spec) == actor


@pytest.mark.parametrize("spec", ["acme", "partner:", "system:x", "wizard:merlin"])
def test_principal_specs_without_a_known_role_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=spec.split(":")[0] or "expected"):
        actor_from_spec(spec)


def test_idempotency_keys_become_command_ids_scoped_by_the_acting_principal() -> None:
    acme = Principal("k1", Actor.partner("acme"))
    other_key_same_partner = Principal("k2", Actor.partner("acme"))
    globex = Principal("k3", Actor.partner("globex"))

    assert scoped_command_id(acme, "abc") == scoped_command_id(other_key_same_partner, "abc")
    assert scoped_command_id(acme, "abc") != scoped_command_id(globex, "abc")
