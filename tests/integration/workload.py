"""A randomized command workload for the end-to-end tests (bounded, seeded)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from commands.ledger import DealLedger
from commands.models import (
    ActorIn,
    ApproveRegistration,
    AttachPartner,
    Command,
    ConvertRegistration,
    CustomerIn,
    ExpireProtections,
    MarkDealLost,
    MarkDealWon,
    MoneyIn,
    MoveDealStage,
    OnboardPartner,
    OpenDeal,
    RejectRegistration,
    ReopenDeal,
    ReviseDealAmount,
    SetAttribution,
    SubmitRegistration,
)
from domain.clock import ManualClock
from domain.errors import DomainError
from domain.values import Actor, Role

MANAGER = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
SALES = ActorIn.of(Actor.user("sam", Role.SALES))
STAGES = ("lead", "qualified", "proposal", "negotiation", "committed")
CURRENCIES = ("EUR", "USD", "GBP", "JPY")


class Workload:
    def __init__(
        self, ledger: DealLedger, clock: ManualClock, seed: int, prefix: str = "w"
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.partners = [f"{prefix}-partner-{i}" for i in range(12)]
        self.customers = [f"customer{i}.example" for i in range(60)]
        self.registrations: list[UUID] = []
        self.deals: list[UUID] = []
        self.sent = 0
        self.accepted = 0
        self.refused = 0

    def _id(self) -> str:
        self.sent += 1
        return f"{self.prefix}-{self.sent}"

    def onboard(self) -> None:
        for code in self.partners:
            self.execute(
                OnboardPartner(
                    command_id=f"{self.prefix}-onboard-{code}",
                    actor=MANAGER,
                    partner_code=code,
                    name=code,
                )
            )

    def execute(self, command: Command) -> UUID | None:
        try:
            outcome = self.ledger.execute(command)
        except DomainError:
            self.refused += 1
            return None
        self.accepted += 1
        return outcome.aggregate_id

    def close_date(self) -> date:
        """Ahead of the clock, which runs for years over a long workload: close dates
        in the past are refused."""
        return (self.clock.now() + timedelta(days=180)).date()

    def step(self) -> None:
        rng = self.rng
        self.clock.advance(timedelta(minutes=rng.randint(1, 600)))
        choice = rng.random()
        if choice < 0.30 or not self.registrations:
            partner = rng.choice(self.partners)
            domain = rng.choice(self.customers)
            reg = self.execute(
                SubmitRegistration(
                    command_id=self._id(),
                    actor=ActorIn.of(Actor.partner(partner)),
                    partner_code=partner,
                    customer=CustomerIn(
                        name=domain.split(".")[0].title(), domain=domain, country="DE"
                    ),
                    product_line=rng.choice(("cloud", "security")),
                    estimated_value=MoneyIn(
                        amount=Decimal(rng.randint(1, 400_000)), currency=rng.choice(CURRENCIES[:3])
                    ),
                    expected_close=self.close_date(),
                )
            )
            if reg:
                self.registrations.append(reg)
        elif choice < 0.40:
            self.execute(
                ApproveRegistration(
                    command_id=self._id(),
                    actor=MANAGER,
                    registration_id=rng.choice(self.registrations),
                )
            )
        elif choice < 0.45:
            self.execute(
                RejectRegistration(
                    command_id=self._id(),
                    actor=MANAGER,
                    registration_id=rng.choice(self.registrations),
                    reason="duplicate",
                )
            )
        elif choice < 0.55:
            deal = self.execute(
                ConvertRegistration(
                    command_id=self._id(),
                    actor=SALES,
                    registration_id=rng.choice(self.registrations),
                    title="Converted",
                    owner=rng.choice(("sam", "ana")),
                )
            )
            if deal:
                self.deals.append(deal)
        elif choice < 0.60:
            domain = rng.choice(self.customers)
            deal = self.execute(
                OpenDeal(
                    command_id=self._id(),
                    actor=SALES,
                    title="Direct",
                    customer=CustomerIn(name="Direct", domain=domain, country="US"),
                    product_line=rng.choice(("cloud", "security")),
                    amount=MoneyIn(
                        amount=Decimal(rng.randint(1, 10**6)) / 100,
                        currency=rng.choice(CURRENCIES[:3]),
                    ),
                    expected_close=self.close_date(),
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
                MoveDealStage(
                    command_id=self._id(),
                    actor=SALES,
                    deal_id=rng.choice(self.deals),
                    stage=rng.choice(STAGES),
                )
            )
        elif choice < 0.80:
            deal_id = rng.choice(self.deals)
            currency = self.ledger.get_deal(deal_id).amount.currency
            self.execute(
                ReviseDealAmount(
                    command_id=self._id(),
                    actor=SALES,
                    deal_id=deal_id,
                    amount=MoneyIn(amount=Decimal(rng.randint(1, 10**7)) / 100, currency=currency),
                )
            )
        elif choice < 0.87:
            deal_id = rng.choice(self.deals)
            partner = rng.choice(self.partners)
            if self.execute(
                AttachPartner(
                    command_id=self._id(),
                    actor=SALES,
                    deal_id=deal_id,
                    partner_code=partner,
                    role=rng.choice(("influencer", "services", "referral")),
                )
            ):
                partners = sorted(self.ledger.get_deal(deal_id).partners)
                cut = Decimal(rng.randint(0, 10_000)) / 100
                shares = {p: Decimal(0) for p in partners}
                shares[partners[0]] = cut
                shares[partners[-1]] += Decimal(100) - cut
                self.execute(
                    SetAttribution(
                        command_id=self._id(), actor=SALES, deal_id=deal_id, shares=shares
                    )
                )
        elif choice < 0.92:
            self.execute(
                MarkDealWon(command_id=self._id(), actor=SALES, deal_id=rng.choice(self.deals))
            )
        elif choice < 0.96:
            self.execute(
                MarkDealLost(
                    command_id=self._id(),
                    actor=SALES,
                    deal_id=rng.choice(self.deals),
                    reason="price",
                )
            )
        elif choice < 0.98:
            self.execute(
                ReopenDeal(
                    command_id=self._id(),
                    actor=SALES,
                    deal_id=rng.choice(self.deals),
                    reason="customer came back",
                )
            )
        else:
            self.clock.advance(timedelta(days=rng.randint(10, 60)))
            self.execute(
                ExpireProtections(command_id=self._id(), actor=ActorIn.of(Actor.system("sweeper")))
            )
