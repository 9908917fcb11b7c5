"""A hypothesis state machine driving the ledger and the reference model side by side.

Each rule issues one command to both: the model (tests/property/reference_model.py)
says whether the ledger must refuse it, with which error code, or accept it, with
which status, and the rule asserts the ledger did exactly that. After every step the
invariants (tests/property/invariants.py) are checked against the ledger's stored
state. Subclasses choose the store (tests/integration/test_property_on_postgres.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
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
    ApproveRegistration,
    AttachPartner,
    Command,
    ConvertRegistration,
    DetachPartner,
    ExpireProtections,
    ExtendProtection,
    MarkDealLost,
    MarkDealWon,
    OpenDeal,
    ReinstatePartner,
    RejectRegistration,
    ReopenDeal,
    RequestRegistrationInfo,
    ResubmitRegistration,
    SetAttribution,
    SuspendPartner,
    WithdrawRegistration,
)
from commands.outcome import Outcome
from commands.unit_of_work import LedgerPolicy
from domain.clock import ManualClock
from domain.errors import DomainError
from domain.ids import protection_id
from tests.property import invariants
from tests.property import strategies as draw
from tests.property.reference_model import (
    Programme,
    Registration,
    Submission,
    Verdict,
    conflict_key,
)
from tests.support.actors import MANAGER, SALES, SYSTEM, partner
from tests.support.driver import Driver, customer, in_memory_ledger, money

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T = TypeVar("T")
TICK = timedelta(minutes=7)  # before every command
POLICY = LedgerPolicy(
    protection_days=draw.POLICY.protection_days,
    max_extensions=draw.POLICY.max_extensions,
    auto_approve_limits={draw.CURRENCY: draw.POLICY.auto_approve_limit},
)


Wanted = Callable[[Registration], bool]


def in_review(registration: Registration) -> bool:
    return registration.status == "in_review"


def action_required(registration: Registration) -> bool:
    return registration.status == "action_required"


def in_play(registration: Registration) -> bool:
    return registration.status in ("in_review", "action_required", "approved")


class LedgerMachine(RuleBasedStateMachine):
    deals = Bundle("deals")
    closed_deals = Bundle("closed_deals")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.ledger = self.make_ledger(self.clock)
        self.drive = Driver(self.ledger)
        self.model = Programme(draw.POLICY)
        self._checked_head = 0
        self._written_streams: set[UUID] = set()
        self.handled: list[tuple[Command, Outcome]] = []  # accepted commands, to re-send

    # -- store choice (overridden by the PostgreSQL run) -----------------------

    def make_ledger(self, clock: ManualClock) -> DealLedger:
        return in_memory_ledger(clock, POLICY, snapshot_interval=3)

    # -- helpers -------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def tick(self) -> None:
        self.clock.advance(TICK)

    def days_ahead(self, days: int) -> date:
        return (self.now + timedelta(days=days)).date()

    def extendable(self, registration: Registration) -> bool:
        return registration.active_at(self.now) and registration.extensions < (
            draw.POLICY.max_extensions
        )

    def convertible(self, registration: Registration) -> bool:
        return registration.status == "approved" and registration.active_at(self.now)

    def registration(self, data: st.DataObject, wanted: Wanted) -> UUID:
        """A registration, more often one that `wanted` picks (so that accepting paths
        are walked as often as refusals)."""
        everyone = list(self.model.registrations)
        fitting = [r for r in everyone if wanted(self.model.registrations[r])]
        return self.pick(data, fitting, everyone, "registration")

    @staticmethod
    def pick(data: st.DataObject, fitting: Sequence[T], anything: Sequence[T], label: str) -> T:
        """One of `fitting` half of the time (when there are any), else of `anything`."""
        prefer_fitting: bool = data.draw(st.booleans(), label=f"fitting {label}")
        pool = fitting if fitting and prefer_fitting else anything
        return data.draw(st.sampled_from(pool), label=label)

    def expect(self, verdict: Verdict, command: Command) -> Outcome | None:
        """Execute `command`; the ledger must give the model's verdict."""
        observed = self.drive.attempt(command)
        name = type(command).__name__
        if verdict.refusal is not None:
            assert isinstance(observed, DomainError), (
                f"{name} should be refused with {verdict.refusal}, got {observed}"
            )
            assert observed.code == verdict.refusal, (name, observed.code, observed.message)
            return None
        assert isinstance(observed, Outcome), (
            f"{name} should be accepted, was refused: {observed.code}: {observed.message}"
        )
        if verdict.status is not None:
            assert observed.result["status"] == verdict.status, (name, observed.result, verdict)
        self.handled.append((command, observed))
        return observed

    # -- partners ------------------------------------------------------------

    @initialize()
    def onboard_partners(self) -> None:
        self.drive.onboard(*draw.PARTNERS)

    @rule(code=draw.partners)
    def suspend_or_reinstate(self, code: str) -> None:
        self.tick()
        if self.model.suspend_or_reinstate(code):
            self.drive.run(SuspendPartner, MANAGER, partner_code=code, reason="audit")
        else:
            self.drive.run(ReinstatePartner, MANAGER, partner_code=code)

    # -- registrations -------------------------------------------------------

    @rule(ask=draw.submissions())
    def submit(self, ask: Submission) -> None:
        self.tick()
        command = self.drive.submission(
            ask.partner,
            ask.domain,
            name=ask.name,
            product=ask.product,
            amount=ask.value,
            currency=draw.CURRENCY,
            country="DE",
            expected_close=self.days_ahead(ask.close_in_days),
        )
        verdict = self.model.submission(ask, self.now)
        protected = self.model.holder(conflict_key(ask.domain, ask.product), self.now)
        outcome = self.expect(verdict, command)
        if outcome is None:
            return
        # docs/architecture.md, invariant I2: never approved over an active protection.
        if protected is not None:
            assert outcome.result["status"] == "in_review", outcome.result
        assert outcome.aggregate_id is not None
        self.model.submitted(outcome.aggregate_id, ask, verdict, self.now)

    @precondition(lambda self: bool(self.model.registrations))
    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        self.tick()
        registration_id = self.registration(data, in_review)
        command = self.drive.command(ApproveRegistration, MANAGER, registration_id=registration_id)
        self.expect(self.model.approve(registration_id, self.now), command)

    @precondition(lambda self: bool(self.model.registrations))
    @rule(data=st.data())
    def reject_as_duplicate(self, data: st.DataObject) -> None:
        self.tick()
        registration_id = self.registration(data, in_review)
        command = self.drive.command(
            RejectRegistration, MANAGER, registration_id=registration_id, reason="duplicate"
        )
        self.expect(self.model.reject(registration_id), command)

    @precondition(lambda self: bool(self.model.registrations))
    @rule(data=st.data())
    def request_info(self, data: st.DataObject) -> None:
        self.tick()
        registration_id = self.registration(data, in_review)
        command = self.drive.command(
            RequestRegistrationInfo, MANAGER, registration_id=registration_id, note="budget?"
        )
        self.expect(self.model.request_info(registration_id), command)

    @precondition(lambda self: bool(self.model.registrations))
    @rule(data=st.data(), days=draw.close_in_days)
    def resubmit(self, data: st.DataObject, days: int) -> None:
        self.tick()
        registration_id = self.registration(data, action_required)
        stored = self.ledger.get_registration(registration_id).customer
        command = self.drive.command(
            ResubmitRegistration,
            partner(self.model.registrations[registration_id].partner),
            registration_id=registration_id,
            customer=customer(stored.domain, stored.name, "FR"),
            estimated_value=money(1000, draw.CURRENCY),
            expected_close=self.days_ahead(days),
        )
        self.expect(self.model.resubmit(registration_id, days, self.now), command)

    @precondition(lambda self: bool(self.model.registrations))
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        self.tick()
        registration_id = self.registration(data, in_play)
        command = self.drive.command(
            WithdrawRegistration,
            partner(self.model.registrations[registration_id].partner),
            registration_id=registration_id,
        )
        self.expect(self.model.withdraw(registration_id), command)

    @precondition(lambda self: bool(self.model.registrations))
    @rule(data=st.data(), days=draw.extension_days)
    def extend(self, data: st.DataObject, days: int) -> None:
        self.tick()
        registration_id = self.registration(data, self.extendable)
        command = self.drive.command(
            ExtendProtection, MANAGER, registration_id=registration_id, days=days
        )
        self.expect(self.model.extend(registration_id, days, self.now), command)

    # -- deals ---------------------------------------------------------------

    @precondition(lambda self: bool(self.model.registrations))
    @rule(target=deals, data=st.data())
    def convert(self, data: st.DataObject) -> Any:
        self.tick()
        registration_id = self.registration(data, self.convertible)
        command = self.drive.command(
            ConvertRegistration, SALES, registration_id=registration_id, title="Deal", owner="sam"
        )
        outcome = self.expect(self.model.conversion(registration_id, self.now), command)
        if outcome is None:
            return multiple()
        deal_id = UUID(outcome.result["deal_id"])
        self.model.converted(registration_id, deal_id)
        return deal_id

    @rule(
        target=deals,
        company=draw.companies,
        product=draw.products,
        amount=draw.amounts,
        days=draw.close_in_days,
    )
    def open_direct_deal(
        self, company: tuple[str, str], product: str, amount: Decimal, days: int
    ) -> Any:
        self.tick()
        name, domain = company
        command = self.drive.command(
            OpenDeal,
            SALES,
            title=f"Direct {name}",
            customer=customer(domain, name, "US"),
            product_line=product,
            amount=money(amount, draw.CURRENCY),
            expected_close=self.days_ahead(days),
            owner="sam",
        )
        key = conflict_key(domain, product)
        outcome = self.expect(self.model.direct_deal(key, self.now), command)
        if outcome is None:
            return multiple()
        assert outcome.aggregate_id is not None
        self.model.opened(outcome.aggregate_id, key, self.days_ahead(days))
        return outcome.aggregate_id

    @rule(deal_id=deals, data=st.data(), weights=draw.share_weights)
    def attach_partner(self, deal_id: UUID, data: st.DataObject, weights: list[int]) -> None:
        """Mostly a partner that may join: in good standing and not yet attached. With
        two or more attached, the revenue is split between them."""
        self.tick()
        attached = self.model.deals[deal_id].partners
        free = [p for p in draw.PARTNERS if p not in attached and p not in self.model.suspended]
        code = self.pick(data, free, draw.PARTNERS, "code")
        command = self.drive.command(
            AttachPartner, SALES, deal_id=deal_id, partner_code=code, role="influencer"
        )
        if self.expect(self.model.attach(deal_id, code), command) and len(attached) > 1:
            shares = draw.split(list(attached), weights)
            split = self.drive.command(SetAttribution, SALES, deal_id=deal_id, shares=shares)
            self.expect(self.model.split(deal_id, set(shares)), split)

    @rule(deal_id=deals, weights=draw.share_weights, stray=st.booleans())
    def split_attribution(self, deal_id: UUID, weights: list[int], stray: bool) -> None:
        """`stray`: the split also names a partner that is not attached."""
        self.tick()
        named = list(self.model.deals[deal_id].partners)
        if stray:
            named.append("stranger")
        shares = draw.split(named, weights)
        command = self.drive.command(SetAttribution, SALES, deal_id=deal_id, shares=shares)
        self.expect(self.model.split(deal_id, set(shares)), command)

    @rule(deal_id=deals, data=st.data())
    def detach_partner(self, deal_id: UUID, data: st.DataObject) -> None:
        """Mostly an attached partner, the sourcing one among them."""
        self.tick()
        code = self.pick(data, self.model.deals[deal_id].partners, draw.PARTNERS, "code")
        command = self.drive.command(DetachPartner, SALES, deal_id=deal_id, partner_code=code)
        self.expect(self.model.detach(deal_id, code, self.now), command)

    @rule(target=closed_deals, deal_id=consumes(deals), won=st.booleans())
    def close_deal(self, deal_id: UUID, won: bool) -> UUID:
        self.tick()
        command: Command
        if won:
            command = self.drive.command(MarkDealWon, SALES, deal_id=deal_id)
        else:
            command = self.drive.command(
                MarkDealLost, SALES, deal_id=deal_id, reason="competitor", competitor="Initrode"
            )
        self.expect(self.model.close(deal_id, won), command)
        return deal_id

    @rule(deal_id=closed_deals, code=draw.partners)
    def a_closed_deal_refuses_changes(self, deal_id: UUID, code: str) -> None:
        self.tick()
        attach = self.drive.command(
            AttachPartner, SALES, deal_id=deal_id, partner_code=code, role="services"
        )
        self.expect(self.model.attach(deal_id, code), attach)
        won = self.drive.command(MarkDealWon, SALES, deal_id=deal_id)
        self.expect(self.model.close(deal_id, True), won)

    @rule(target=deals, deal_id=consumes(closed_deals), new_date=st.booleans())
    def reopen(self, deal_id: UUID, new_date: bool) -> Any:
        self.tick()
        new_close = self.days_ahead(90) if new_date else None
        command = self.drive.command(
            ReopenDeal, SALES, deal_id=deal_id, reason="back", expected_close=new_close
        )
        if self.expect(self.model.reopen(deal_id, new_close, self.now), command) is None:
            return multiple()
        return deal_id

    # -- time and repetition -----------------------------------------------------

    @rule(days=st.one_of(st.integers(0, 7), st.integers(0, 120)), hours=st.integers(0, 23))
    def time_passes(self, days: int, hours: int) -> None:
        self.clock.advance(timedelta(days=days, hours=hours))

    @precondition(lambda self: self.model.next_expiry(self.now) is not None)
    @rule()
    def to_the_instant_a_protection_ends(self) -> None:
        """The next command then runs exactly when a protection ends: protection
        holds until its time and not a moment longer."""
        until = self.model.next_expiry(self.now)
        assert until is not None
        self.clock.set(max(self.now, until - TICK))

    @precondition(lambda self: bool(self.model.registrations))
    @rule()
    def sweep(self) -> None:
        self.tick()
        outcome = self.drive.run(ExpireProtections, SYSTEM)
        expired = self.model.sweep(self.now)
        assert {UUID(r) for r in outcome.result["expired"]} == expired

    @precondition(lambda self: bool(self.handled))
    @rule(data=st.data(), same_body=st.booleans())
    def a_command_id_is_handled_once(self, data: st.DataObject, same_body: bool) -> None:
        """An accepted command re-sent is answered with its first outcome; its id reused
        for another command is refused. Neither writes anything."""
        command, first = data.draw(st.sampled_from(self.handled), label="handled")
        head = self.ledger.recorder.max_notification_id()
        if same_body:
            again = self.ledger.execute(command)
            assert again.replayed
            assert (again.aggregate_id, again.result) == (first.aggregate_id, first.result)
        else:
            reused = self.drive.command(
                SuspendPartner,
                MANAGER,
                command_id=command.command_id,
                partner_code=draw.PARTNERS[0],
                reason="reused",
            )
            self.expect(Verdict(refusal="idempotency_key_reused"), reused)
        assert self.ledger.recorder.max_notification_id() == head

    # -- invariants ----------------------------------------------------------

    def _conflict_keys(self) -> set[str]:
        return {r.key for r in self.model.registrations.values()} | {
            d.key for d in self.model.deals.values()
        }

    def _written(self) -> set[UUID]:
        """The streams written since the step before (every invariant of a step sees
        the same set)."""
        head = self.ledger.recorder.max_notification_id() or 0
        if head != self._checked_head:
            self._written_streams, self._checked_head = invariants.streams_written_after(
                self.ledger, self._checked_head
            )
        return self._written_streams

    @invariant()
    def the_ledger_agrees_with_the_model(self) -> None:
        invariants.registrations_agree_with_the_model(self.ledger, self.model)
        invariants.deals_agree_with_the_model(self.ledger, self.model)

    @invariant()
    def at_most_one_active_protection_per_key(self) -> None:
        """docs/architecture.md, invariant I1."""
        invariants.at_most_one_active_protection_per_key(
            self.ledger, self.model.registrations, self.now
        )

    @invariant()
    def first_to_register_wins(self) -> None:
        """docs/architecture.md, invariant I2."""
        written = self._written()
        keys = [k for k in self._conflict_keys() if protection_id(k) in written]
        invariants.first_to_register_wins(self.ledger, keys)

    @invariant()
    def attribution_is_exact(self) -> None:
        """docs/architecture.md, invariant I3."""
        invariants.attribution_is_exact(self.ledger, self.model.deals)

    @invariant()
    def replay_equals_live(self) -> None:
        """docs/architecture.md, invariant I4, for every stream the step wrote."""
        invariants.replay_equals_live(self.ledger, self._written())

    @invariant()
    def streams_are_append_only(self) -> None:
        """docs/architecture.md, invariant I5, for every stream the step wrote."""
        invariants.streams_are_append_only(self.ledger, self._written())
