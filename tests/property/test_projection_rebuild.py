"""Invariants I4 and I6 (docs/architecture.md) for the read models: building them
incrementally from an at-least-once, partitioned feed, in batches of any size, yields
exactly the rows of a rebuild from scratch, which yields the rows of applying every
message one at a time.

Random command sequences drive a real in-memory ledger. A simulated relay publishes
its notifications to Kafka-like partitions keyed by aggregate id (so one aggregate's
events stay in order while different aggregates interleave), sometimes re-publishing
earlier messages; the consumer reads the partitions in random order, in batches of
random sizes spanning several partitions, and sometimes rewinds (re-delivery after a
crash). The incremental model must equal a model rebuilt in random batch sizes and
one built message by message, and all must agree with the ledger. The same check runs
on PostgreSQL in tests/integration/test_read_models_on_postgres.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from commands.ledger import DealLedger
from commands.models import (
    ActorIn,
    AddDealNote,
    ApproveRegistration,
    AttachPartner,
    ChangePartnerTier,
    Command,
    ConvertRegistration,
    CustomerIn,
    DetachPartner,
    ExpireProtections,
    ExtendProtection,
    MarkDealLost,
    MarkDealWon,
    MoneyIn,
    MoveDealStage,
    OnboardPartner,
    OpenDeal,
    ReinstatePartner,
    RejectRegistration,
    ReopenDeal,
    RequestRegistrationInfo,
    ResubmitRegistration,
    ReviseDealAmount,
    ReviseDealCloseDate,
    SetAttribution,
    SubmitRegistration,
    SuspendPartner,
    WithdrawRegistration,
)
from domain.clock import ManualClock
from domain.deal import DealStatus
from domain.errors import DomainError
from domain.values import Actor, Role
from projections.contract.encoding import notification_to_message
from projections.contract.models import EventMessage
from projections.engine import apply_batch
from projections.read_models import PROJECTIONS, create_tables, dump_tables
from projections.store import ReadStore, to_micros

MANAGER = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
SALES = ActorIn.of(Actor.user("sam", Role.SALES))
SYSTEM = ActorIn.of(Actor.system("sweeper"))
PARTNERS = ("northwind", "contoso", "fabrikam")
COMPANIES = (
    ("Acme Inc", "acme.com"),
    ("ACME Incorporated", "acme.io"),
    ("Globex", "globex.com"),
    ("Globex GmbH", "eu.globex.com"),
)
PRODUCTS = ("cloud", "security")
CURRENCIES = ("EUR", "USD", "JPY")
STAGES = ("lead", "qualified", "proposal", "negotiation", "committed")
ROLES = ("reseller", "distributor", "referral", "influencer", "services")
PARTITIONS = 3

Action = tuple[Any, ...]

indexes = st.integers(0, 7)
amounts = st.one_of(
    st.integers(1, 10**9).map(lambda cents: Decimal(cents).scaleb(-2)),
    st.integers(1, 10**12).map(lambda micros: Decimal(micros).scaleb(-6)),
)
optional_stages = st.none() | st.sampled_from(STAGES)
submit = st.tuples(
    st.just("submit"),
    st.sampled_from(PARTNERS),
    st.sampled_from(COMPANIES),
    st.sampled_from(PRODUCTS),
    st.sampled_from(CURRENCIES),
    amounts,
)
review = st.tuples(
    st.sampled_from(["approve", "reject", "request_info", "resubmit", "withdraw", "extend"]),
    indexes,
)
convert = st.tuples(st.just("convert"), indexes, optional_stages)
open_direct = st.tuples(
    st.just("open_direct"),
    st.sampled_from(COMPANIES),
    st.sampled_from(PRODUCTS),
    st.sampled_from(CURRENCIES),
    amounts,
    optional_stages,
)
work_deal = st.one_of(
    st.tuples(st.just("move"), indexes, st.sampled_from(STAGES)),
    st.tuples(st.just("revise_amount"), indexes, amounts),
    st.tuples(st.just("revise_close"), indexes, st.integers(1, 400)),
    st.tuples(st.just("detach"), indexes, indexes),
    st.tuples(st.just("note"), indexes),
)
attach = st.tuples(st.just("attach"), indexes, st.sampled_from(PARTNERS), st.sampled_from(ROLES))
split = st.tuples(st.just("split"), indexes, st.integers(0, 10_000))
close = st.tuples(st.sampled_from(["win", "lose"]), indexes)
reopen = st.tuples(st.just("reopen"), indexes, optional_stages)
time_passes = st.tuples(st.just("time_passes"), st.integers(0, 100), st.integers(0, 23))
world = st.one_of(
    st.tuples(st.just("sweep")),
    st.tuples(st.just("suspend_or_reinstate"), st.sampled_from(PARTNERS)),
    st.tuples(st.just("tier"), st.sampled_from(PARTNERS), st.sampled_from(["silver", "gold"])),
)
# Listing a strategy twice makes it twice as likely: most steps should do real work.
ledger_actions: st.SearchStrategy[Action] = st.one_of(
    submit, submit, review, review, convert, convert, open_direct, work_deal, work_deal,
    attach, attach, split, close, close, reopen, time_passes, world,
)  # fmt: skip
delivery_actions: st.SearchStrategy[Action] = st.one_of(
    st.tuples(st.just("consume"), st.integers(0, PARTITIONS - 1), st.integers(1, 25)),
    st.tuples(st.just("consume_all"), st.integers(1, 60)),
    st.tuples(st.just("rewind"), st.integers(0, PARTITIONS - 1), st.integers(1, 25)),
    st.tuples(st.just("republish"), st.integers(1, 25)),
)
actions = st.lists(
    st.one_of(ledger_actions, ledger_actions, delivery_actions), min_size=20, max_size=80
)


FOLDED = frozenset(t for p in PROJECTIONS for t in p.folds)


class Feed:
    """The relay's partitions and the consumer's offsets, with at-least-once quirks."""

    def __init__(self, ledger: DealLedger, store: ReadStore, transaction: Any) -> None:
        self.ledger = ledger
        self.store = store
        self.transaction = transaction
        self.logs: list[list[EventMessage]] = [[] for _ in range(PARTITIONS)]
        self.offsets = [0] * PARTITIONS
        self.history: list[EventMessage] = []  # every message once, in ledger order
        self.seen: dict[str, int] = {}  # highest version delivered per aggregate

    def relay(self) -> None:
        start = self.history[-1].position if self.history else 0
        for notification in self.ledger.recorder.select_notifications(
            start=start, limit=100_000, inclusive_of_start=False
        ):
            self.publish(notification_to_message(self.ledger.mapper, notification))

    def publish(self, message: EventMessage) -> None:
        if not self.history or message.position > self.history[-1].position:
            self.history.append(message)
        self.logs[UUID(message.aggregate_id).int % PARTITIONS].append(message)

    def republish(self, back: int) -> None:
        """The relay crashed before recording its progress: it sends the tail again."""
        self.relay()
        for message in self.history[-back:]:
            self.publish(message)

    def consume(self, partition: int, count: int) -> None:
        self.consume_from([partition], count)

    def consume_all(self, count: int) -> None:
        """One poll across every partition, as the projector host applies them."""
        self.consume_from(range(PARTITIONS), count)

    def consume_from(self, partitions: Iterable[int], count: int) -> None:
        self.relay()
        batch: list[EventMessage] = []
        for partition in partitions:
            start = self.offsets[partition]
            taken = self.logs[partition][start : start + count]
            batch.extend(taken)
            self.offsets[partition] = start + len(taken)
        fresh = 0
        for message in batch:
            if message.aggregate_version > self.seen.get(message.aggregate_id, 0):
                self.seen[message.aggregate_id] = message.aggregate_version
                fresh += message.aggregate_type in FOLDED
        with self.transaction():  # one transaction per batch, as the projector host does
            outcome = apply_batch(self.store, PROJECTIONS, batch)
        assert outcome.refused == []
        assert outcome.applied == fresh, batch

    def rewind(self, partition: int, back: int) -> None:
        """The consumer crashed after applying but before committing its offset."""
        self.offsets[partition] = max(0, self.offsets[partition] - back)

    def drain(self) -> None:
        self.relay()
        for partition in range(PARTITIONS):
            self.consume(partition, len(self.logs[partition]))


class Driver:
    """Runs random actions against a real ledger; refused commands are simply refused."""

    def __init__(self) -> None:
        self.clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        self.ledger = DealLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=self.clock)
        self.count = 0
        self.registrations: list[UUID] = []
        self.deals: list[UUID] = []
        self.suspended: set[str] = set()
        for code in PARTNERS:
            self.run(OnboardPartner, actor=MANAGER, partner_code=code, name=code.title())

    def run(self, command_type: type[Command], **fields: Any) -> UUID | None:
        self.count += 1
        fields.setdefault("actor", SALES)
        try:
            outcome = self.ledger.execute(command_type(command_id=f"cmd-{self.count}", **fields))
        except DomainError:
            return None
        return outcome.aggregate_id

    def new_date_if_passed(self, expected_close: date) -> date | None:
        """A deal's close date may not be set before today: a new one once it has passed."""
        today = self.clock.now().date()
        return today + timedelta(days=30) if expected_close < today else None

    def registration(self, index: int) -> UUID | None:
        return self.registrations[index % len(self.registrations)] if self.registrations else None

    def deal(self, index: int) -> UUID | None:
        return self.deals[index % len(self.deals)] if self.deals else None

    def partner_of(self, registration_id: UUID) -> ActorIn:
        return ActorIn.of(Actor.partner(self.ledger.get_registration(registration_id).partner_code))

    def act(self, action: Action) -> None:
        self.clock.advance(timedelta(minutes=7))
        kind, *args = action
        handler: Callable[..., None] = getattr(self, f"do_{kind}")
        handler(*args)

    # -- registrations -------------------------------------------------------------

    def do_submit(
        self,
        partner: str,
        company: tuple[str, str],
        product: str,
        currency: str,
        amount: Decimal,
    ) -> None:
        name, domain = company
        created = self.run(
            SubmitRegistration,
            actor=ActorIn.of(Actor.partner(partner)),
            partner_code=partner,
            customer=CustomerIn(name=name, domain=domain, country="DE"),
            product_line=product,
            estimated_value=MoneyIn(amount=amount, currency=currency),
            expected_close=(self.clock.now() + timedelta(days=60)).date(),
        )
        if created is not None:
            self.registrations.append(created)

    def do_approve(self, index: int) -> None:
        if (reg := self.registration(index)) is not None:
            self.run(ApproveRegistration, actor=MANAGER, registration_id=reg)

    def do_reject(self, index: int) -> None:
        if (reg := self.registration(index)) is not None:
            self.run(RejectRegistration, actor=MANAGER, registration_id=reg, reason="duplicate")

    def do_request_info(self, index: int) -> None:
        if (reg := self.registration(index)) is not None:
            self.run(RequestRegistrationInfo, actor=MANAGER, registration_id=reg, note="budget?")

    def do_resubmit(self, index: int) -> None:
        if (reg := self.registration(index)) is None:
            return
        customer = self.ledger.get_registration(reg).customer
        self.run(
            ResubmitRegistration,
            actor=self.partner_of(reg),
            registration_id=reg,
            customer=CustomerIn(name=f"{customer.name} AG", domain=customer.domain, country="AT"),
            estimated_value=MoneyIn(amount=Decimal("1234.5"), currency="EUR"),
            expected_close=(self.clock.now() + timedelta(days=30)).date(),
        )

    def do_withdraw(self, index: int) -> None:
        if (reg := self.registration(index)) is not None:
            self.run(WithdrawRegistration, actor=self.partner_of(reg), registration_id=reg)

    def do_extend(self, index: int) -> None:
        if (reg := self.registration(index)) is not None:
            self.run(ExtendProtection, actor=MANAGER, registration_id=reg, days=30)

    def do_convert(self, index: int, stage: str | None) -> None:
        if (reg := self.registration(index)) is None:
            return
        created = self.run(
            ConvertRegistration,
            registration_id=reg,
            title="Deal",
            owner="sam",
            stage=stage,
            expected_close=self.new_date_if_passed(
                self.ledger.get_registration(reg).expected_close
            ),
        )
        if created is not None:
            self.deals.append(created)

    # -- deals ---------------------------------------------------------------------

    def do_open_direct(
        self,
        company: tuple[str, str],
        product: str,
        currency: str,
        amount: Decimal,
        stage: str | None,
    ) -> None:
        name, domain = company
        created = self.run(
            OpenDeal,
            title=f"Direct {name}",
            customer=CustomerIn(name=name, domain=domain, country="US"),
            product_line=product,
            amount=MoneyIn(amount=amount, currency=currency),
            expected_close=(self.clock.now() + timedelta(days=90)).date(),
            owner="sam",
            stage=stage,
        )
        if created is not None:
            self.deals.append(created)

    def do_move(self, index: int, stage: str) -> None:
        if (deal := self.deal(index)) is not None:
            self.run(MoveDealStage, deal_id=deal, stage=stage)

    def do_revise_amount(self, index: int, amount: Decimal) -> None:
        if (deal := self.deal(index)) is None:
            return
        currency = self.ledger.get_deal(deal).amount.currency
        self.run(ReviseDealAmount, deal_id=deal, amount=MoneyIn(amount=amount, currency=currency))

    def do_revise_close(self, index: int, days: int) -> None:
        if (deal := self.deal(index)) is not None:
            close = (self.clock.now() + timedelta(days=days)).date()
            self.run(ReviseDealCloseDate, deal_id=deal, expected_close=close)

    def do_attach(self, index: int, partner: str, role: str) -> None:
        if (deal := self.deal(index)) is not None:
            self.run(AttachPartner, deal_id=deal, partner_code=partner, role=role)

    def do_detach(self, index: int, which: int) -> None:
        if (deal := self.deal(index)) is None:
            return
        partners = sorted(self.ledger.get_deal(deal).partners)
        if partners:
            self.run(DetachPartner, deal_id=deal, partner_code=partners[which % len(partners)])

    def do_split(self, index: int, basis_points: int) -> None:
        if (deal := self.deal(index)) is None:
            return
        partners = sorted(self.ledger.get_deal(deal).partners)
        if not partners:
            return
        shares = {code: Decimal(0) for code in partners}
        share = Decimal(basis_points) / 100
        shares[partners[-1]] += share
        shares[partners[0]] += 100 - share
        self.run(SetAttribution, deal_id=deal, shares=shares)

    def do_win(self, index: int) -> None:
        if (deal := self.deal(index)) is not None:
            self.run(MarkDealWon, deal_id=deal)

    def do_lose(self, index: int) -> None:
        if (deal := self.deal(index)) is not None:
            self.run(MarkDealLost, deal_id=deal, reason="competitor", competitor="Initrode")

    def do_note(self, index: int) -> None:
        if (deal := self.deal(index)) is not None:
            self.run(AddDealNote, deal_id=deal, text="called the customer")

    def do_reopen(self, index: int, stage: str | None) -> None:
        if (deal := self.deal(index)) is not None:
            passed = self.new_date_if_passed(self.ledger.get_deal(deal).expected_close)
            self.run(ReopenDeal, deal_id=deal, reason="back on", stage=stage, expected_close=passed)

    # -- time and partners ---------------------------------------------------------

    def do_time_passes(self, days: int, hours: int) -> None:
        self.clock.advance(timedelta(days=days, hours=hours))

    def do_sweep(self) -> None:
        self.run(ExpireProtections, actor=SYSTEM)

    def do_suspend_or_reinstate(self, partner: str) -> None:
        if partner in self.suspended:
            self.run(ReinstatePartner, actor=MANAGER, partner_code=partner)
            self.suspended.discard(partner)
        else:
            self.run(SuspendPartner, actor=MANAGER, partner_code=partner, reason="audit")
            self.suspended.add(partner)

    def do_tier(self, partner: str, tier: str) -> None:
        self.run(ChangePartnerTier, actor=MANAGER, partner_code=partner, tier=tier)


def fresh_store() -> tuple[Any, ReadStore]:
    conn = sqlite3.connect(":memory:")
    store = ReadStore(conn, "sqlite")
    with conn:
        create_tables(store)
    return lambda: conn, store


def in_batches(
    store: ReadStore, transaction: Any, messages: list[EventMessage], sizes: list[int]
) -> None:
    """Applies `messages` in order, cut into batches of the given sizes (cycled)."""
    start, turn = 0, 0
    while start < len(messages):
        size = sizes[turn % len(sizes)]
        with transaction():
            outcome = apply_batch(store, PROJECTIONS, messages[start : start + size])
        assert outcome.refused == []
        start, turn = start + size, turn + 1


def assert_models_agree_with_the_ledger(driver: Driver, store: ReadStore) -> None:
    ledger = driver.ledger
    deals = {
        row[0]: row[1:]
        for row in store.fetchall(
            "SELECT deal_id, status, stage, amount_micros, currency FROM rm_pipeline_deal"
        )
    }
    shares = {
        (row[0], row[1]): row[2]
        for row in store.fetchall("SELECT deal_id, partner_code, share FROM rm_pipeline_partner")
    }
    for deal_id in driver.deals:
        deal = ledger.get_deal(deal_id)
        expected = (deal.status.value, deal.stage, to_micros(deal.amount.amount))
        assert deals[str(deal_id)] == (*expected, deal.amount.currency)
        for code, share in deal.shares.items():
            assert Decimal(shares[str(deal_id), code]) == share
    assert len(shares) == sum(len(ledger.get_deal(d).partners) for d in driver.deals)
    won = dict(
        store.fetchall(
            "SELECT d.deal_id, SUM(s.won_micros) FROM rm_attribution_deal d "
            "JOIN rm_attribution_share s ON s.deal_id = d.deal_id "
            "WHERE d.status = 'won' GROUP BY d.deal_id"
        )
    )
    for deal_id in driver.deals:
        deal = ledger.get_deal(deal_id)
        if deal.status is DealStatus.WON and deal.partners:
            assert won[str(deal_id)] == to_micros(deal.amount.amount)
    statuses = dict(store.fetchall("SELECT registration_id, status FROM rm_registration"))
    for reg_id in driver.registrations:
        assert statuses[str(reg_id)] == ledger.get_registration(reg_id).status.value


batch_sizes = st.lists(st.integers(1, 40), min_size=1, max_size=5)


def check_batching_never_matters(
    steps: list[Action], sizes: list[int], new_store: Callable[[], tuple[Any, ReadStore]]
) -> None:
    driver = Driver()
    transaction, incremental = new_store()
    feed = Feed(driver.ledger, incremental, transaction)
    for action in steps:
        if action[0] == "consume":
            feed.consume(action[1], action[2])
        elif action[0] == "consume_all":
            feed.consume_all(action[1])
        elif action[0] == "rewind":
            feed.rewind(action[1], action[2])
        elif action[0] == "republish":
            feed.republish(action[1])
        else:
            driver.act(action)
    feed.drain()

    rebuild_transaction, rebuilt = new_store()
    in_batches(rebuilt, rebuild_transaction, feed.history, sizes)
    one_transaction, one_by_one = new_store()
    in_batches(one_by_one, one_transaction, feed.history, [1])

    assert [m.position for m in feed.history] == list(range(1, len(feed.history) + 1))
    assert dump_tables(incremental) == dump_tables(rebuilt) == dump_tables(one_by_one)
    assert_models_agree_with_the_ledger(driver, rebuilt)


@given(actions, batch_sizes)
def test_read_models_are_the_same_whatever_the_batches_and_redeliveries(
    steps: list[Action], sizes: list[int]
) -> None:
    check_batching_never_matters(steps, sizes, fresh_store)
