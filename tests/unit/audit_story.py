"""A deal with a rival's claim on its key, written to an embedded store for audit tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from commands.models import (
    AddDealNote,
    Command,
    MarkDealWon,
    MoveDealStage,
    RejectRegistration,
)
from domain.clock import ManualClock
from domain.registration import RejectionReason
from infra.bootstrap import build_ledger
from infra.settings import Settings
from tests.support.actors import MANAGER, SALES
from tests.support.driver import Driver


@dataclass(frozen=True)
class AuditStory:
    deal_id: UUID
    registration_id: UUID
    rival_registration_id: UUID
    deal_versions: int


def write_story(settings: Settings) -> AuditStory:
    """Northwind registers globex.com first; Contoso's later claim on the same key is
    rejected; Northwind's registration becomes a deal that moves, gathers notes and
    is won (12 deal versions)."""
    clock = ManualClock(datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    drive = Driver(ledger)
    submission = {
        "name": "Globex",
        "product": "cloud",
        "amount": "120000.00",
        "expected_close": date(2026, 9, 30),
        "country": "US",
    }
    try:
        drive.onboard("northwind", "contoso")
        clock.advance(timedelta(hours=1))
        registration = drive.registered("northwind", "globex.com", **submission)
        clock.advance(timedelta(hours=1))
        rival = drive.registered("contoso", "globex.com", **submission)
        clock.advance(timedelta(hours=1))
        drive.run(
            RejectRegistration, MANAGER, registration_id=rival, reason=RejectionReason.DUPLICATE
        )
        clock.advance(timedelta(days=1))
        deal_id = drive.convert(registration, title="Globex cloud")
        steps: list[tuple[type[Command], dict[str, Any]]] = [
            (MoveDealStage, {"stage": "proposal"}),
            *((AddDealNote, {"text": f"note {i}"}) for i in range(9)),
            (MarkDealWon, {}),
        ]
        for command_type, fields in steps:
            clock.advance(timedelta(hours=5))
            drive.run(command_type, SALES, deal_id=deal_id, **fields)
        versions = ledger.get_deal(deal_id).version
    finally:
        ledger.close()
    return AuditStory(deal_id, registration, rival, versions)


def store_settings(path: Path) -> Settings:
    return Settings(sqlite_path=path)
