"""A deal with a rival's claim on its key, written to an embedded store for audit tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from commands.models import (
    ActorIn,
    AddDealNote,
    ConvertRegistration,
    CustomerIn,
    MarkDealWon,
    MoneyIn,
    MoveDealStage,
    OnboardPartner,
    RejectRegistration,
    SubmitRegistration,
)
from domain.clock import ManualClock
from domain.registration import RejectionReason
from domain.values import Actor, Role
from infra.bootstrap import build_ledger
from infra.settings import Settings

MANAGER = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
SALES = ActorIn.of(Actor.user("sam", Role.SALES))
GLOBEX = CustomerIn(name="Globex", domain="globex.com", country="US")


@dataclass(frozen=True)
class AuditStory:
    deal_id: UUID
    registration_id: UUID
    rival_registration_id: UUID
    deal_versions: int


def _submit(code: str, command_id: str) -> SubmitRegistration:
    return SubmitRegistration(
        command_id=command_id,
        actor=ActorIn.of(Actor.partner(code)),
        partner_code=code,
        customer=GLOBEX,
        product_line="cloud",
        estimated_value=MoneyIn(amount=Decimal("120000.00"), currency="USD"),
        expected_close=date(2026, 9, 30),
    )


def write_story(settings: Settings) -> AuditStory:
    """Northwind registers globex.com first; Contoso's later claim on the same key is
    rejected; Northwind's registration becomes a deal that moves, gathers notes and
    is won (12 deal versions)."""
    clock = ManualClock(datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    try:
        for code in ("northwind", "contoso"):
            ledger.execute(
                OnboardPartner(command_id=f"on-{code}", actor=MANAGER, partner_code=code, name=code)
            )
        clock.advance(timedelta(hours=1))
        registration = ledger.execute(_submit("northwind", "reg-northwind")).aggregate_id
        clock.advance(timedelta(hours=1))
        rival = ledger.execute(_submit("contoso", "reg-contoso")).aggregate_id
        assert registration is not None
        assert rival is not None
        clock.advance(timedelta(hours=1))
        ledger.execute(
            RejectRegistration(
                command_id="reject-contoso",
                actor=MANAGER,
                registration_id=rival,
                reason=RejectionReason.DUPLICATE,
            )
        )
        clock.advance(timedelta(days=1))
        deal_id = ledger.execute(
            ConvertRegistration(
                command_id="convert",
                actor=SALES,
                registration_id=registration,
                title="Globex cloud",
                owner="sam",
            )
        ).aggregate_id
        assert deal_id is not None
        steps = [
            MoveDealStage(command_id="stage-1", actor=SALES, deal_id=deal_id, stage="proposal"),
            *(
                AddDealNote(command_id=f"note-{i}", actor=SALES, deal_id=deal_id, text=f"note {i}")
                for i in range(9)
            ),
            MarkDealWon(command_id="won", actor=SALES, deal_id=deal_id),
        ]
        for step in steps:
            clock.advance(timedelta(hours=5))
            ledger.execute(step)
        versions = ledger.get_deal(deal_id).version
    finally:
        ledger.close()
    return AuditStory(deal_id, registration, rival, versions)


def store_settings(path: Path) -> Settings:
    return Settings(sqlite_path=path)
