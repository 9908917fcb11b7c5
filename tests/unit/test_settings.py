from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from commands.unit_of_work import LedgerPolicy
from infra.settings import Settings


def test_without_a_database_url_the_store_is_embedded_sqlite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DEALLEDGER_DATABASE_URL", raising=False)
    env = Settings(sqlite_path=Path("x/y.sqlite")).eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == "x/y.sqlite"


def test_a_postgres_url_maps_onto_the_eventsourcing_variables() -> None:
    env = Settings(database_url="postgresql://u%40x:p%2Fw@db.local:6543/ledger").eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.local", "6543")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("u@x", "p/w")
    assert env["POSTGRES_DBNAME"] == "ledger"


def test_settings_are_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALLEDGER_KAFKA_BOOTSTRAP", "a:1, b:2")
    monkeypatch.setenv("DEALLEDGER_PROTECTION_DAYS", "30")
    settings = Settings()
    assert settings.bootstrap_servers == ["a:1", "b:2"]
    assert settings.protection_days == 30


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "postgresql://u:p@h", "not a url"])
def test_a_database_url_that_is_not_postgres_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="database_url"):
        Settings(database_url=url)


def test_the_projector_group_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEALLEDGER_PROJECTOR_GROUP", raising=False)
    assert Settings().projector_group == "dealledger-projectors"
    monkeypatch.setenv("DEALLEDGER_PROJECTOR_GROUP", "blue-projectors")
    assert Settings().projector_group == "blue-projectors"
    with pytest.raises(ValidationError, match="projector_group"):
        Settings(projector_group="")


_POLICY_SETTINGS = ("PROTECTION_DAYS", "MAX_EXTENSIONS", "AUTO_APPROVE_LIMITS")


def test_a_ledger_without_settings_follows_the_default_programme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in _POLICY_SETTINGS:
        monkeypatch.delenv(f"DEALLEDGER_{name}", raising=False)
    settings = Settings()
    policy = LedgerPolicy()
    assert policy.protection_days == settings.protection_days
    assert policy.max_extensions == settings.max_extensions
    assert policy.auto_approve_limits == settings.auto_approve_limits


def test_the_readme_gives_the_default_programme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = dict(re.findall(r"^\| `DEALLEDGER_(\w+)` \| `([^`]*)` \|", readme, re.M))
    documented = {name: json.loads(rows[name]) for name in _POLICY_SETTINGS}
    policy = LedgerPolicy()
    assert documented["PROTECTION_DAYS"] == policy.protection_days
    assert documented["MAX_EXTENSIONS"] == policy.max_extensions
    limits = {currency: Decimal(v) for currency, v in documented["AUTO_APPROVE_LIMITS"].items()}
    assert limits == policy.auto_approve_limits
