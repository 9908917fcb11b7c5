"""A hypothesis state machine driving the ledger against a plain reference model.

The model knows only DESIGN.md's rules; after every step the invariants of §3
are checked against the ledger's stored aggregates. Subclasses choose the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from commands.ledger import DealLedger
from commands.models import (
    ActorIn,
    ApproveRegistration,
    AttachPartner,
    ConvertRegistration,
    CustomerIn,
    ExpireProtections,
    ExtendProtection,
    MarkDealLost,
    MarkDealWon,
    MoneyIn,
    OnboardPartner,
    OpenDeal,
    ReinstatePartner,
    RejectRegistration,
    ReopenDeal,
    RequestRegistrationInfo,
    ResubmitRegistration,
    SetAttribution,
    SubmitRegistration,
    SuspendPartner,
    WithdrawRegistration,
)
from domain.clock import ManualClock
from domain.deal import DealStatus
from domain.errors import (
    ChannelConflict,
    DomainError,
    IllegalTransition,
    PartnerNotInGoodStanding,
)
from domain.ids import protection_id
from domain.normalise import conflict_key, normalise_company_name, registrable_domain
from domain.registration import RegistrationStatus
from domain.values import Actor, Role

MANAGER = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
SALES = ActorIn.of(Actor.user("sam", Role.SALES))
SYSTEM = ActorIn.of(Actor.system("sweeper"))
PARTNERS = ("northwind", "contoso", "fabrikam")
PROTECTION_DAYS = 90
MAX_EXTENSIONS = 2
AUTO_LIMIT = Decimal(250000)

# Companies whose names or registrable domains collide on purpose.
COMPANIES = (
    ("Acme Inc", "acme.com"),
    ("ACME Incorporated", "acme.io"),
    ("Globex", "globex.com"),
    ("Globex GmbH", "eu.globex.com"),
    ("Initech", "initech.co.uk"),
    ("Initech Ltd", "shop.initech.co.uk"),
)
PRODUCTS = ("cloud", "Cloud ", "security")


def domain_variant(domain: str, variant: int) -> str:
    """Spellings of one customer domain that must land on the same conflict key."""
    return [
        domain,
        f"WWW.{domain.upper()}",
        f"https://www.{domain}/contact",
        f"http://{domain.title()}:443",
    ][variant]


@dataclass
class RegModel:
    id: UUID
    partner: str
    key: str
    product: str
    reg_domain: str
    name: str
    status: RegistrationStatus
    until: datetime | None = None
    extensions: int = 0
    released: bool = False  # protection (or pending claim) no longer held
    deal: UUID | None = None

    def holds_protection(self) -> bool:
        return (
            self.status in (RegistrationStatus.APPROVED, RegistrationStatus.CONVERTED)
            and not self.released
        )

    def active_at(self, now: datetime) -> bool:
        return self.holds_protection() and self.until is not None and now < self.until

    def lapsed_at(self, now: datetime) -> bool:
        return self.holds_protection() and self.until is not None and now >= self.until

    def is_pending(self) -> bool:
        return self.status in (RegistrationStatus.IN_REVIEW, RegistrationStatus.ACTION_REQUIRED)

    def is_live(self) -> bool:
        """Still claims its name/domain in the customer indexes."""
        return self.is_pending() or self.holds_protection()


@dataclass
class DealModel:
    id: UUID
    key: str
    registration: UUID | None
    status: DealStatus = DealStatus.OPEN
    partners: list[str] = field(default_factory=list)


class LedgerMachine(RuleBasedStateMachine):
    registrations = Bundle("registrations")
    deals = Bundle("deals")
    closed_deals = Bundle("closed_deals")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        self.ledger = self.make_ledger(self.clock)
        self.regs: dict[UUID, RegModel] = {}
        self.deal_models: dict[UUID, DealModel] = {}
        self.suspended: set[str] = set()
        self.counter = 0

    # -- store choice (overridden by the PostgreSQL run) -----------------------

    def make_ledger(self, clock: ManualClock) -> DealLedger:
        from commands.unit_of_work import LedgerPolicy

        return DealLedger(
            env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
            clock=clock,
            policy=LedgerPolicy(PROTECTION_DAYS, MAX_EXTENSIONS, {"EUR": AUTO_LIMIT}),
            snapshot_interval=3,
        )

    # -- helpers -------------------------------------------------------------

    def next_id(self) -> str:
        self.counter += 1
        return f"cmd-{self.counter}"

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def tick(self) -> None:
        self.clock.advance(timedelta(minutes=7))

    def release_lapsed_on(self, key: str) -> None:
        for reg in self.regs.values():
            if reg.key == key and reg.lapsed_at(self.now):
                self.release_lapsed(reg)

    def release_lapsed(self, reg: RegModel) -> None:
        if reg.status is RegistrationStatus.APPROVED:
            reg.status = RegistrationStatus.EXPIRED
        reg.released = True

    def protected(self, key: str) -> RegModel | None:
        holders = [r for r in self.regs.values() if r.key == key and r.active_at(self.now)]
        return holders[0] if holders else None

    def expect(self, error: type[DomainError] | None, command: Any) -> Any:
        if error is None:
            return self.ledger.execute(command)
        try:
            outcome = self.ledger.execute(command)
        except error:
            return None
        raise AssertionError(
            f"{type(command).__name__} should be refused with {error.__name__}, got {outcome}"
        )

    # -- rules ---------------------------------------------------------------

    @initialize()
    def onboard_partners(self) -> None:
        for code in PARTNERS:
            self.ledger.execute(
                OnboardPartner(
                    command_id=self.next_id(), actor=MANAGER, partner_code=code, name=code.title()
                )
            )

    @rule(partner=st.sampled_from(PARTNERS))
    def suspend_or_reinstate(self, partner: str) -> None:
        self.tick()
        if partner in self.suspended:
            self.ledger.execute(
                ReinstatePartner(command_id=self.next_id(), actor=MANAGER, partner_code=partner)
            )
            self.suspended.discard(partner)
        else:
            self.ledger.execute(
                SuspendPartner(
                    command_id=self.next_id(), actor=MANAGER, partner_code=partner, reason="audit"
                )
            )
            self.suspended.add(partner)

    @rule(
        target=registrations,
        partner=st.sampled_from(PARTNERS),
        company=st.sampled_from(COMPANIES),
        variant=st.integers(0, 3),
        product=st.sampled_from(PRODUCTS),
        large=st.booleans(),
    )
    def submit(
        self, partner: str, company: tuple[str, str], variant: int, product: str, large: bool
    ) -> Any:
        self.tick()
        name, domain = company
        value = AUTO_LIMIT + 1 if large else Decimal("125000.50")
        command = SubmitRegistration(
            command_id=self.next_id(),
            actor=ActorIn.of(Actor.partner(partner)),
            partner_code=partner,
            customer=CustomerIn(name=name, domain=domain_variant(domain, variant), country="DE"),
            product_line=product,
            estimated_value=MoneyIn(amount=value, currency="EUR"),
            expected_close=date(2031, 1, 1),
        )
        if partner in self.suspended:
            self.expect(PartnerNotInGoodStanding, command)
            return multiple()
        key = conflict_key(domain, product)
        product_norm = key.split("|")[1]
        self.release_lapsed_on(key)
        protected = self.protected(key) is not None
        contested = any(r.key == key and r.is_pending() for r in self.regs.values())
        direct = any(
            d.key == key and d.registration is None and d.status is DealStatus.OPEN
            for d in self.deal_models.values()
        )
        near_duplicate = any(
            r.is_live()
            and r.product == product_norm
            and r.key != key
            and (
                r.reg_domain == registrable_domain(domain) or r.name == normalise_company_name(name)
            )
            for r in self.regs.values()
        )
        outcome = self.ledger.execute(command)
        reg_id = outcome.aggregate_id
        assert reg_id is not None
        should_auto_approve = not (protected or contested or direct or near_duplicate or large)
        status = RegistrationStatus(outcome.result["status"])
        # First to register wins: never approved over an active protection.
        if protected:
            assert status is RegistrationStatus.IN_REVIEW
        assert (status is RegistrationStatus.APPROVED) == should_auto_approve, (
            outcome.result,
            dict(protected=protected, contested=contested, direct=direct, near=near_duplicate),
        )
        self.regs[reg_id] = RegModel(
            reg_id,
            partner,
            key,
            product_norm,
            registrable_domain(domain),
            normalise_company_name(name),
            status,
            until=self.now + timedelta(days=PROTECTION_DAYS) if should_auto_approve else None,
        )
        return reg_id

    @rule(reg_id=registrations)
    def approve(self, reg_id: UUID) -> None:
        self.tick()
        reg = self.regs[reg_id]
        command = ApproveRegistration(
            command_id=self.next_id(), actor=MANAGER, registration_id=reg_id
        )
        if reg.status is not RegistrationStatus.IN_REVIEW:
            self.expect(IllegalTransition, command)
            return
        self.release_lapsed_on(reg.key)
        if self.protected(reg.key) is not None:
            # The release of lapsed holders is part of the refused unit of work: undone.
            self.expect(ChannelConflict, command)
            return
        self.ledger.execute(command)
        reg.status = RegistrationStatus.APPROVED
        reg.until = self.now + timedelta(days=PROTECTION_DAYS)

    @rule(reg_id=registrations)
    def reject_as_duplicate(self, reg_id: UUID) -> None:
        self.tick()
        reg = self.regs[reg_id]
        command = RejectRegistration(
            command_id=self.next_id(), actor=MANAGER, registration_id=reg_id, reason="duplicate"
        )
        if reg.status is not RegistrationStatus.IN_REVIEW:
            self.expect(IllegalTransition, command)
            return
        self.ledger.execute(command)
        reg.status = RegistrationStatus.REJECTED
        reg.released = True

    @rule(reg_id=registrations)
    def request_info_then_resubmit(self, reg_id: UUID) -> None:
        self.tick()
        reg = self.regs[reg_id]
        ask = RequestRegistrationInfo(
            command_id=self.next_id(), actor=MANAGER, registration_id=reg_id, note="budget?"
        )
        if reg.status is not RegistrationStatus.IN_REVIEW:
            self.expect(IllegalTransition, ask)
            return
        self.ledger.execute(ask)
        current = self.ledger.get_registration(reg_id)
        self.ledger.execute(
            ResubmitRegistration(
                command_id=self.next_id(),
                actor=ActorIn.of(Actor.partner(reg.partner)),
                registration_id=reg_id,
                customer=CustomerIn(
                    name=current.customer.name, domain=current.customer.domain, country="FR"
                ),
                estimated_value=MoneyIn(amount=Decimal(1000), currency="EUR"),
                expected_close=date(2031, 6, 1),
            )
        )

    @rule(reg_id=registrations)
    def withdraw(self, reg_id: UUID) -> None:
        self.tick()
        reg = self.regs[reg_id]
        command = WithdrawRegistration(
            command_id=self.next_id(),
            actor=ActorIn.of(Actor.partner(reg.partner)),
            registration_id=reg_id,
        )
        if not (reg.is_pending() or reg.status is RegistrationStatus.APPROVED):
            self.expect(IllegalTransition, command)
            return
        self.ledger.execute(command)
        reg.status = RegistrationStatus.WITHDRAWN
        reg.released = True

    @rule(reg_id=registrations)
    def extend(self, reg_id: UUID) -> None:
        self.tick()
        reg = self.regs[reg_id]
        command = ExtendProtection(
            command_id=self.next_id(), actor=MANAGER, registration_id=reg_id, days=30
        )
        if not (reg.active_at(self.now) and reg.extensions < MAX_EXTENSIONS):
            self.expect(IllegalTransition, command)
            return
        self.ledger.execute(command)
        assert reg.until is not None
        reg.until += timedelta(days=30)
        reg.extensions += 1

    @rule(target=deals, reg_id=registrations)
    def convert(self, reg_id: UUID) -> Any:
        self.tick()
        reg = self.regs[reg_id]
        command = ConvertRegistration(
            command_id=self.next_id(),
            actor=SALES,
            registration_id=reg_id,
            title="Deal",
            owner="sam",
        )
        if not (reg.status is RegistrationStatus.APPROVED and reg.active_at(self.now)):
            self.expect(IllegalTransition, command)
            return multiple()
        outcome = self.ledger.execute(command)
        deal_id = outcome.aggregate_id
        assert deal_id is not None
        reg.status = RegistrationStatus.CONVERTED
        reg.deal = deal_id
        self.deal_models[deal_id] = DealModel(deal_id, reg.key, reg_id, partners=[reg.partner])
        return deal_id

    @rule(target=deals, company=st.sampled_from(COMPANIES), product=st.sampled_from(PRODUCTS))
    def open_direct_deal(self, company: tuple[str, str], product: str) -> Any:
        self.tick()
        name, domain = company
        key = conflict_key(domain, product)
        command = OpenDeal(
            command_id=self.next_id(),
            actor=SALES,
            title=f"Direct {name}",
            customer=CustomerIn(name=name, domain=domain, country="US"),
            product_line=product,
            amount=MoneyIn(amount=Decimal("999.99"), currency="EUR"),
            expected_close=date(2031, 1, 1),
            owner="sam",
        )
        if self.protected(key) is not None:
            self.expect(ChannelConflict, command)
            return multiple()
        outcome = self.ledger.execute(command)
        assert outcome.aggregate_id is not None
        self.deal_models[outcome.aggregate_id] = DealModel(outcome.aggregate_id, key, None)
        return outcome.aggregate_id

    @rule(
        deal_id=deals,
        partner=st.sampled_from(PARTNERS),
        basis_points=st.integers(0, 10_000),
    )
    def attach_partner_and_split(self, deal_id: UUID, partner: str, basis_points: int) -> None:
        self.tick()
        deal = self.deal_models[deal_id]
        if (
            deal.status is not DealStatus.OPEN
            or partner in deal.partners
            or partner in self.suspended
        ):
            return
        self.ledger.execute(
            AttachPartner(
                command_id=self.next_id(),
                actor=SALES,
                deal_id=deal_id,
                partner_code=partner,
                role="influencer",
            )
        )
        deal.partners.append(partner)
        if len(deal.partners) == 2:
            first, second = deal.partners
            share = Decimal(basis_points) / 100
            self.ledger.execute(
                SetAttribution(
                    command_id=self.next_id(),
                    actor=SALES,
                    deal_id=deal_id,
                    shares={first: 100 - share, second: share},
                )
            )

    @rule(target=closed_deals, deal_id=consumes(deals), won=st.booleans())
    def close_deal(self, deal_id: UUID, won: bool) -> UUID:
        self.tick()
        deal = self.deal_models[deal_id]
        if won:
            self.ledger.execute(
                MarkDealWon(command_id=self.next_id(), actor=SALES, deal_id=deal_id)
            )
            deal.status = DealStatus.WON
        else:
            self.ledger.execute(
                MarkDealLost(
                    command_id=self.next_id(),
                    actor=SALES,
                    deal_id=deal_id,
                    reason="competitor",
                    competitor="Initrode",
                )
            )
            deal.status = DealStatus.LOST
        if deal.registration is not None:
            reg = self.regs[deal.registration]
            if reg.holds_protection():
                reg.released = True
        return deal_id

    @rule(target=deals, deal_id=consumes(closed_deals))
    def reopen(self, deal_id: UUID) -> Any:
        self.tick()
        deal = self.deal_models[deal_id]
        command = ReopenDeal(command_id=self.next_id(), actor=SALES, deal_id=deal_id, reason="back")
        if deal.registration is None:
            if self.protected(deal.key) is not None:
                self.expect(ChannelConflict, command)
                return multiple()
            self.ledger.execute(command)
            deal.status = DealStatus.OPEN
            return deal_id
        reg = self.regs[deal.registration]
        holder = self.protected(deal.key)
        if holder is not None and holder.id != reg.id:
            self.expect(ChannelConflict, command)
            return multiple()
        self.ledger.execute(command)
        self.release_lapsed_on(deal.key)
        deal.status = DealStatus.OPEN
        if reg.until is not None and reg.until > self.now:
            reg.released = False  # protection restored for the time it had left
        return deal_id

    @rule(days=st.integers(0, 120), hours=st.integers(0, 23))
    def time_passes(self, days: int, hours: int) -> None:
        self.clock.advance(timedelta(days=days, hours=hours))

    @precondition(lambda self: bool(self.regs))
    @rule()
    def sweep(self) -> None:
        self.tick()
        outcome = self.ledger.execute(ExpireProtections(command_id=self.next_id(), actor=SYSTEM))
        expected = {r.id for r in self.regs.values() if r.lapsed_at(self.now)}
        assert {UUID(r) for r in outcome.result["expired"]} == expected
        for reg_id in expected:
            self.release_lapsed(self.regs[reg_id])

    @rule()
    def resend_is_idempotent(self) -> None:
        """Re-sending an already handled command returns it and writes nothing."""
        head = self.ledger.recorder.max_notification_id()
        again = self.ledger.execute(
            OnboardPartner(
                command_id="cmd-1",
                actor=MANAGER,
                partner_code=PARTNERS[0],
                name=PARTNERS[0].title(),
            )
        )
        assert again.replayed
        assert self.ledger.recorder.max_notification_id() == head

    # -- invariants ----------------------------------------------------------

    @invariant()
    def statuses_match_the_model(self) -> None:
        for reg_id, model in self.regs.items():
            assert self.ledger.get_registration(reg_id).status is model.status, model

    @invariant()
    def at_most_one_active_protection_per_key(self) -> None:
        active: dict[str, list[UUID]] = {}
        for reg_id in self.regs:
            reg = self.ledger.get_registration(reg_id)
            live = reg.protected_until is not None and self.now < reg.protected_until
            if reg.status is RegistrationStatus.CONVERTED and reg.deal_id is not None:
                live = live and self.ledger.get_deal(reg.deal_id).is_open
            elif reg.status is not RegistrationStatus.APPROVED:
                live = False
            if live:
                active.setdefault(reg.conflict_key, []).append(reg_id)
        for key, holders in active.items():
            assert len(holders) == 1, (key, holders)
            protection = self.ledger.get_protection(protection_id(key))
            assert protection.holder == holders[0]
            assert protection.is_protected_at(self.now)

    @invariant()
    def attribution_is_exact(self) -> None:
        for deal_id in self.deal_models:
            deal = self.ledger.get_deal(deal_id)
            if deal.partners:
                assert sum(deal.shares.values(), Decimal(0)) == 100
                assert set(deal.shares) == set(deal.partners)
            if deal.status is DealStatus.WON and deal.partners:
                total = sum((m.amount for m in deal.attributed.values()), Decimal(0))
                assert total == deal.amount.amount

    @invariant()
    def replay_equals_live_and_streams_are_contiguous(self) -> None:
        for aggregate_id in [*self.regs, *self.deal_models]:
            events = list(self.ledger.events.get(aggregate_id))
            assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
            replayed = self.ledger.replay(aggregate_id)
            loaded: Any = self.ledger.repository.get(aggregate_id)  # via snapshots if taken
            assert vars(replayed) == vars(loaded)
