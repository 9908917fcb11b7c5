"""A randomized command workload for the end-to-end tests (bounded, seeded)."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from commands.ledger import DealLedger
from commands.models import (
    ApproveRegistration,
    AttachPartner,
    Command,
    ConvertRegistration,
    ExpireProtections,
    MarkDealLost,
    MarkDealWon,
    MoveDealStage,
    OpenDeal,
    RejectRegistration,
    ReopenDeal,
    ReviseDealAmount,
    SetAttribution,
)
from domain.clock import ManualClock
from domain.errors import DomainError
from tests.support.actors import MANAGER, SALES, SYSTEM
from tests.support.driver import Driver, customer, money

STAGES = ("lead", "qualified", "proposal", "negotiation", "committed")
CURRENCIES = ("EUR", "USD", "GBP", "JPY")


class Workload:
    def __init__(
        self, ledger: DealLedger, clock: ManualClock, seed: int, prefix: str = "w"
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.rng = random.Random(seed)
        self.drive = Driver(ledger, prefix)
        self.partners = [f"{prefix}-partner-{i}" for i in range(12)]
        self.customers = [f"customer{i}.example" for i in range(60)]
        self.registrations: list[UUID] = []
        self.deals: list[UUID] = []
        self.sent = 0
        self.accepted = 0
        self.refused = 0

    def onboard(self) -> None:
        self.drive.onboard(*self.partners)

    def execute(self, command: Command) -> UUID | None:
        """Issue one command of the workload, counting it sent and accepted or refused."""
        self.sent += 1
        result = self.drive.attempt(command)
        if isinstance(result, DomainError):
            self.refused += 1
            return None
        self.accepted += 1
        return result.aggregate_id

    def step(self) -> None:
        rng = self.rng
        drive = self.drive
        self.clock.advance(timedelta(minutes=rng.randint(1, 600)))
        choice = rng.random()
        if choice < 0.30 or not self.registrations:
            reg = self.execute(
                drive.submission(
                    rng.choice(self.partners),
                    rng.choice(self.customers),
                    product=rng.choice(("cloud", "security")),
                    amount=rng.randint(1, 400_000),
                    currency=rng.choice(CURRENCIES[:3]),
                    country="DE",
                )
            )
            if reg:
                self.registrations.append(reg)
        elif choice < 0.40:
            registration_id = rng.choice(self.registrations)
            self.execute(
                drive.command(ApproveRegistration, MANAGER, registration_id=registration_id)
            )
        elif choice < 0.45:
            self.execute(
                drive.command(
                    RejectRegistration,
                    MANAGER,
                    registration_id=rng.choice(self.registrations),
                    reason="duplicate",
                )
            )
        elif choice < 0.55:
            deal = self.execute(
                drive.command(
                    ConvertRegistration,
                    SALES,
                    registration_id=rng.choice(self.registrations),
                    title="Converted",
                    owner=rng.choice(("sam", "ana")),
                )
            )
            if deal:
                self.deals.append(deal)
        elif choice < 0.60:
            deal = self.execute(
                drive.command(
                    OpenDeal,
                    SALES,
                    title="Direct",
                    customer=customer(rng.choice(self.customers), "Direct", "US"),
                    product_line=rng.choice(("cloud", "security")),
                    amount=money(Decimal(rng.randint(1, 10**6)) / 100, rng.choice(CURRENCIES[:3])),
                    expected_close=drive.close_date(),
                    owner="ana",
                    region=rng.choice(("EMEA", "NA", "APAC")),
                )
            )
            if deal:
                self.deals.append(deal)
        elif not self.deals:
            return
        elif choice < 0.75:
            self.execute(
                drive.command(
                    MoveDealStage, SALES, deal_id=rng.choice(self.deals), stage=rng.choice(STAGES)
                )
            )
        elif choice < 0.80:
            deal_id = rng.choice(self.deals)
            currency = self.ledger.get_deal(deal_id).amount.currency
            amount = money(Decimal(rng.randint(1, 10**7)) / 100, currency)
            self.execute(drive.command(ReviseDealAmount, SALES, deal_id=deal_id, amount=amount))
        elif choice < 0.87:
            deal_id = rng.choice(self.deals)
            if self.execute(
                drive.command(
                    AttachPartner,
                    SALES,
                    deal_id=deal_id,
                    partner_code=rng.choice(self.partners),
                    role=rng.choice(("influencer", "services", "referral")),
                )
            ):
                partners = sorted(self.ledger.get_deal(deal_id).partners)
                cut = Decimal(rng.randint(0, 10_000)) / 100
                shares = {p: Decimal(0) for p in partners}
                shares[partners[0]] = cut
                shares[partners[-1]] += Decimal(100) - cut
                self.execute(drive.command(SetAttribution, SALES, deal_id=deal_id, shares=shares))
        elif choice < 0.92:
            self.execute(drive.command(MarkDealWon, SALES, deal_id=rng.choice(self.deals)))
        elif choice < 0.96:
            self.execute(
                drive.command(MarkDealLost, SALES, deal_id=rng.choice(self.deals), reason="price")
            )
        elif choice < 0.98:
            self.execute(
                drive.command(
                    ReopenDeal, SALES, deal_id=rng.choice(self.deals), reason="customer came back"
                )
            )
        else:
            self.clock.advance(timedelta(days=rng.randint(10, 60)))
            self.execute(drive.command(ExpireProtections, SYSTEM))
