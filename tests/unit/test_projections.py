"""Read models built from a real in-memory ledger's messages, queried on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

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
from commands.outcome import Outcome
from domain.clock import ManualClock
from domain.values import Actor, Role
from projections.attribution import ATTRIBUTION, PartnerAttribution, partner_attribution
from projections.contract.encoding import notification_to_message
from projections.contract.models import EventMessage, InvalidMessage, contract
from projections.engine import apply_batch
from projections.pipeline import PipelineTotal, pipeline_rows, pipeline_totals
from projections.read_models import (
    PROJECTIONS,
    applied_version,
    create_tables,
    dump_tables,
    projection_position,
    projections_named,
)
from projections.registration_queue import open_conflicts, review_queue
from projections.store import ReadStore, from_micros, to_micros

D = Decimal
MANAGER = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
SALES = ActorIn.of(Actor.user("sam", Role.SALES))
SYSTEM = ActorIn.of(Actor.system("sweeper"))
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Story:
    """Drives the real write side with a hand-moved clock and reads its messages back."""

    def __init__(self) -> None:
        self.clock = ManualClock(START)
        self.ledger = DealLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=self.clock)
        self.count = 0

    def run(self, command_type: type[Command], **fields: Any) -> Outcome:
        self.count += 1
        fields.setdefault("actor", SALES)
        return self.ledger.execute(command_type(command_id=f"cmd-{self.count}", **fields))

    def created(self, command_type: type[Command], **fields: Any) -> UUID:
        aggregate_id = self.run(command_type, **fields).aggregate_id
        assert aggregate_id is not None
        return aggregate_id

    def later(self, **delta: float) -> datetime:
        return self.clock.advance(timedelta(**delta))

    def onboard(self, *codes: str) -> None:
        for code in codes:
            self.run(OnboardPartner, actor=MANAGER, partner_code=code, name=code.title())

    def submit(
        self,
        partner: str,
        domain: str,
        amount: str,
        currency: str = "USD",
        product: str = "Cloud",
    ) -> UUID:
        return self.created(
            SubmitRegistration,
            actor=ActorIn.of(Actor.partner(partner)),
            partner_code=partner,
            customer=CustomerIn(name=domain.split(".")[0].title(), domain=domain, country="US"),
            product_line=product,
            estimated_value=MoneyIn(amount=D(amount), currency=currency),
            expected_close=date(2026, 9, 30),
        )

    def convert(self, registration_id: UUID, stage: str | None = None) -> UUID:
        return self.created(
            ConvertRegistration,
            registration_id=registration_id,
            title="Deal",
            owner="sam",
            stage=stage,
        )

    def open_deal(
        self, domain: str, amount: str, currency: str, stage: str | None = None, region: str = ""
    ) -> UUID:
        return self.created(
            OpenDeal,
            title=f"Direct {domain}",
            customer=CustomerIn(name=domain.split(".")[0].title(), domain=domain, country="DE"),
            product_line="Cloud",
            amount=MoneyIn(amount=D(amount), currency=currency),
            expected_close=date(2026, 6, 30),
            owner="sam",
            stage=stage,
            region=region,
        )

    def messages(self) -> list[EventMessage]:
        return [
            notification_to_message(self.ledger.mapper, n)
            for n in self.ledger.recorder.select_notifications(start=1, limit=10000)
        ]

    def project(self, store: ReadStore) -> list[EventMessage]:
        messages = self.messages()
        for message in messages:
            apply_message(store, message)
        return messages


def apply_message(
    store: ReadStore, message: EventMessage, projections: list[str] | None = None
) -> bool:
    """Applies one message alone; whether any read model folded it (False: a duplicate
    or stale everywhere). A refusal is raised as InvalidMessage."""
    outcome = apply_batch(store, projections_named(projections), [message])
    if outcome.refused:
        raise InvalidMessage(outcome.refused[0][1])
    return outcome.applied > 0


def republished(message: EventMessage, **changes: Any) -> EventMessage:
    """`message` as a consumer would read it with `changes` made to its JSON."""
    document = {**message.to_json(), **changes}
    return contract().from_json(document)


@pytest.fixture
def story() -> Story:
    return Story()


@pytest.fixture
def store() -> Iterator[ReadStore]:
    conn = sqlite3.connect(":memory:")
    read_store = ReadStore(conn, "sqlite")
    with conn:
        create_tables(read_store)
    yield read_store
    conn.close()


def by_code(store: ReadStore) -> dict[str, PartnerAttribution]:
    return {a.partner_code: a for a in partner_attribution(store)}


def totals(store: ReadStore, by: Any) -> dict[tuple[str | None, str], PipelineTotal]:
    return {(t.key, t.currency): t for t in pipeline_totals(store, by)}


# -- pipeline -------------------------------------------------------------------------------


def test_open_pipeline_is_totalled_per_currency_never_across_currencies(
    story: Story, store: ReadStore
) -> None:
    story.open_deal("globex.com", "100000", "USD", stage="proposal")
    story.open_deal("initech.de", "40000.50", "EUR", stage="qualified")
    story.open_deal("hooli.de", "300000", "EUR", stage="negotiation")
    story.project(store)

    by_currency = totals(store, "currency")
    assert set(by_currency) == {("EUR", "EUR"), ("USD", "USD")}
    assert by_currency["USD", "USD"].amount == D("100000")
    assert by_currency["USD", "USD"].weighted_amount == D("50000")
    assert by_currency["EUR", "EUR"].amount == D("340000.50")
    assert by_currency["EUR", "EUR"].weighted_amount == D("235000.125")
    assert by_currency["EUR", "EUR"].deals == 2

    by_stage = totals(store, "stage")
    assert by_stage["qualified", "EUR"].weighted_amount == D("10000.125")
    assert by_stage["negotiation", "EUR"].weighted_amount == D("225000")
    assert by_stage["proposal", "USD"].amount == D("100000")


def test_weighted_amounts_follow_stage_moves_and_amount_revisions(
    story: Story, store: ReadStore
) -> None:
    deal = story.open_deal("globex.com", "1000", "USD")
    story.run(MoveDealStage, deal_id=deal, stage="committed")
    story.run(ReviseDealAmount, deal_id=deal, amount=MoneyIn(amount=D("2000.01"), currency="USD"))
    story.run(ReviseDealCloseDate, deal_id=deal, expected_close=date(2026, 12, 1))
    story.project(store)

    (row,) = pipeline_rows(store, now=story.clock.now())
    assert (row.stage, row.probability, row.amount) == ("committed", D(90), D("2000.01"))
    assert row.weighted_amount == D("1800.009")
    assert row.expected_close == date(2026, 12, 1)
    assert from_micros(to_micros(row.weighted_amount), "USD") == row.weighted_amount


def test_pipeline_rows_show_partners_and_days_in_stage_and_filter_by_them(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso")
    registration = story.submit("northwind", "globex.com", "100000")
    story.later(hours=1)
    deal = story.convert(registration)
    story.run(AttachPartner, deal_id=deal, partner_code="contoso", role="influencer")
    story.later(days=2)
    story.run(MoveDealStage, deal_id=deal, stage="proposal")
    entered = story.clock.now()
    story.open_deal("initech.de", "5000", "EUR", region="EMEA")
    story.project(store)

    now = entered + timedelta(days=3, hours=23)
    (row,) = pipeline_rows(store, now=now, partner="contoso")
    assert row.deal_id == deal
    assert row.sourcing_partner == "northwind"
    assert row.influencing_partners == ("contoso",)
    assert row.stage_entered_at == entered
    assert row.opened_at == START + timedelta(hours=1)
    assert row.days_in_stage == 3
    assert row.region == "US"
    assert [r.title for r in pipeline_rows(store, now=now, region="EMEA")] == ["Direct initech.de"]
    assert pipeline_rows(store, now=now, currency="EUR", stage="proposal") == []
    assert len(pipeline_rows(store, now=now)) == 2


def test_pipeline_totals_by_partner_count_a_deal_for_each_attached_partner(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso")
    deal = story.convert(story.submit("northwind", "globex.com", "100000"))
    story.run(AttachPartner, deal_id=deal, partner_code="contoso", role="services")
    story.open_deal("initech.de", "5000", "EUR")
    story.project(store)

    by_partner = totals(store, "partner")
    assert by_partner["northwind", "USD"].amount == D("100000")
    assert by_partner["contoso", "USD"].amount == D("100000")
    assert by_partner["contoso", "USD"].weighted_amount == D("10000")
    assert by_partner[None, "EUR"].deals == 1  # a direct deal without partners
    assert [t.key for t in pipeline_totals(store, "partner")] == ["contoso", "northwind", None]


def test_closed_deals_leave_the_pipeline_and_a_reopened_deal_returns(
    story: Story, store: ReadStore
) -> None:
    deal = story.open_deal("globex.com", "1000", "USD", stage="proposal")
    story.run(MarkDealLost, deal_id=deal, reason="price")
    story.project(store)
    assert pipeline_rows(store, now=story.clock.now()) == []
    assert pipeline_totals(store, "stage") == []

    story.later(days=1)
    story.run(ReopenDeal, deal_id=deal, reason="budget is back", stage="qualified")
    story.project(store)
    (row,) = pipeline_rows(store, now=story.clock.now())
    assert (row.status, row.stage, row.weighted_amount) == ("open", "qualified", D(250))
    assert row.closed_at is None
    assert row.stage_entered_at == story.clock.now()


def test_pipeline_totals_refuse_an_unknown_dimension(store: ReadStore) -> None:
    with pytest.raises(ValueError, match="cannot group"):
        pipeline_totals(store, "owner")  # type: ignore[arg-type]


# -- attribution ----------------------------------------------------------------------------


def test_a_seventy_thirty_split_won_deal_attributes_exact_revenue(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso")
    deal = story.convert(story.submit("northwind", "globex.com", "180000"))
    story.run(AttachPartner, deal_id=deal, partner_code="contoso", role="influencer")
    story.run(SetAttribution, deal_id=deal, shares={"northwind": D(70), "contoso": D(30)})
    story.run(ReviseDealAmount, deal_id=deal, amount=MoneyIn(amount=D("212345.67"), currency="USD"))
    story.run(MarkDealWon, deal_id=deal)
    story.project(store)

    partners = by_code(store)
    assert partners["northwind"].won_revenue == {"USD": D("148641.97")}
    assert partners["contoso"].won_revenue == {"USD": D("63703.70")}
    assert sum(p.won_revenue["USD"] for p in partners.values()) == D("212345.67")
    assert partners["northwind"].sourced_pipeline == {}


def test_sourced_and_influenced_open_pipeline_are_kept_apart_per_currency(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso", "fabrikam")
    usd = story.convert(story.submit("northwind", "globex.com", "100000"))
    story.convert(story.submit("contoso", "initech.de", "2500.25", "EUR"))
    story.run(AttachPartner, deal_id=usd, partner_code="contoso", role="influencer")
    story.run(AttachPartner, deal_id=usd, partner_code="fabrikam", role="services")
    story.run(DetachPartner, deal_id=usd, partner_code="fabrikam")
    story.project(store)

    partners = by_code(store)
    assert partners["northwind"].sourced_pipeline == {"USD": D("100000")}
    assert partners["northwind"].influenced_pipeline == {}
    assert partners["contoso"].sourced_pipeline == {"EUR": D("2500.25")}
    assert partners["contoso"].influenced_pipeline == {"USD": D("100000")}
    assert (partners["contoso"].sourced_deals, partners["contoso"].influenced_deals) == (1, 1)
    assert partners["fabrikam"].influenced_pipeline == {}
    assert partners["fabrikam"].name == "Fabrikam"


def test_win_rate_and_sales_cycle_come_from_won_and_lost_deals(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso", "fabrikam")
    won = story.convert(story.submit("northwind", "globex.com", "1000"))
    lost = story.convert(story.submit("northwind", "initech.de", "1000"))
    story.run(AttachPartner, deal_id=won, partner_code="contoso", role="referral")
    story.later(days=10, hours=12)
    story.run(MarkDealWon, deal_id=won)
    story.run(MarkDealLost, deal_id=lost, reason="competitor", competitor="Hooli")
    story.run(ChangePartnerTier, actor=MANAGER, partner_code="fabrikam", tier="gold")
    story.run(SuspendPartner, actor=MANAGER, partner_code="fabrikam", reason="audit")
    story.project(store)

    partners = by_code(store)
    northwind, contoso, fabrikam = partners["northwind"], partners["contoso"], partners["fabrikam"]
    assert (northwind.deals_won, northwind.deals_lost, northwind.win_rate) == (1, 1, D("0.5"))
    assert northwind.average_sales_cycle_days == D("10.50")
    assert (contoso.deals_won, contoso.deals_lost, contoso.win_rate) == (1, 0, D(1))
    assert contoso.won_revenue == {"USD": D(0)}  # attached at 0% until a split is set
    assert (fabrikam.win_rate, fabrikam.average_sales_cycle_days) == (None, None)
    assert (fabrikam.tier, fabrikam.suspended) == ("gold", True)


def test_reopening_a_won_deal_clears_its_outcome(story: Story, store: ReadStore) -> None:
    story.onboard("northwind")
    deal = story.open_deal("globex.com", "1000", "USD")
    story.run(AttachPartner, deal_id=deal, partner_code="northwind", role="reseller")
    story.run(MarkDealWon, deal_id=deal)
    story.run(ReopenDeal, deal_id=deal, reason="the order was cancelled")
    story.project(store)

    northwind = by_code(store)["northwind"]
    assert (northwind.deals_won, northwind.win_rate, northwind.won_revenue) == (0, None, {})
    assert northwind.influenced_pipeline == {"USD": D("1000")}


# -- registration queue ---------------------------------------------------------------------


def test_review_queue_ages_pending_registrations_against_the_sla(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso")
    old = story.submit("northwind", "globex.com", "300000")  # above the auto-approval limit
    story.later(hours=20)
    waiting = story.submit("contoso", "initech.de", "400000", "EUR")
    story.run(RequestRegistrationInfo, actor=MANAGER, registration_id=waiting, note="budget?")
    story.submit("contoso", "hooli.com", "1000")  # auto-approved: not in the queue
    story.project(store)

    now = START + timedelta(hours=30, minutes=45)
    first, second = review_queue(store, now=now, sla_hours=24)
    assert (first.registration_id, first.status) == (old, "in_review")
    assert first.review_reasons == ("above_auto_approval_limit",)
    assert (first.age_hours, first.breaches_sla) == (D("30.75"), True)
    assert (second.registration_id, second.status) == (waiting, "action_required")
    assert (second.age_hours, second.breaches_sla) == (D("10.75"), False)
    assert (second.value, second.currency) == (D("400000.00"), "EUR")


def test_a_decided_registration_leaves_the_review_queue(story: Story, store: ReadStore) -> None:
    story.onboard("northwind", "contoso")
    approved = story.submit("northwind", "globex.com", "300000")
    rejected = story.submit("contoso", "initech.de", "300000")
    resubmitted = story.submit("contoso", "hooli.com", "300000")
    story.run(ApproveRegistration, actor=MANAGER, registration_id=approved)
    story.run(RejectRegistration, actor=MANAGER, registration_id=rejected, reason="not_qualified")
    story.run(RequestRegistrationInfo, actor=MANAGER, registration_id=resubmitted, note="who?")
    story.run(
        ResubmitRegistration,
        actor=ActorIn.of(Actor.partner("contoso")),
        registration_id=resubmitted,
        customer=CustomerIn(name="Hooli XYZ", domain="hooli.com", country="US"),
        estimated_value=MoneyIn(amount=D(1200), currency="USD"),
        expected_close=date(2026, 8, 1),
    )
    story.project(store)

    (item,) = review_queue(store, now=story.clock.now(), sla_hours=48)
    assert (item.registration_id, item.review_reasons) == (resubmitted, ("resubmitted",))
    assert (item.customer_name, item.value) == ("Hooli XYZ", D("1200.00"))


def test_open_conflicts_list_live_registrations_and_the_protection_holder(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso", "fabrikam")
    holder = story.submit("northwind", "globex.com", "1000")
    story.later(minutes=5)
    second = story.submit("contoso", "www.globex.com", "2000", product="cloud ")
    story.later(minutes=5)
    third = story.submit("fabrikam", "globex.com", "3000")
    story.submit("contoso", "initech.de", "1000")  # alone on its key
    story.project(store)

    (conflict,) = open_conflicts(store)
    assert conflict.conflict_key == "globex.com|cloud"
    assert conflict.registration_ids == (holder, second, third)
    assert conflict.partners == ("northwind", "contoso", "fabrikam")
    assert (conflict.holder_registration_id, conflict.holder_partner) == (holder, "northwind")
    assert conflict.protected_until == START + timedelta(days=90)


def test_a_conflict_ends_when_the_contenders_leave_or_protection_lapses(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso", "fabrikam")
    holder = story.submit("northwind", "globex.com", "1000")
    contender = story.submit("contoso", "globex.com", "1000")
    story.project(store)
    assert len(open_conflicts(store)) == 1
    assert open_conflicts(store, now=START + timedelta(days=91)) == []  # lapsed, not swept

    story.run(ExtendProtection, actor=MANAGER, registration_id=holder, days=30)
    story.project(store)
    (extended,) = open_conflicts(store, now=START + timedelta(days=91))
    assert extended.protected_until == START + timedelta(days=120)

    story.run(
        WithdrawRegistration, actor=ActorIn.of(Actor.partner("contoso")), registration_id=contender
    )
    story.project(store)
    assert open_conflicts(store) == []


def test_a_swept_protection_no_longer_holds_the_key(story: Story, store: ReadStore) -> None:
    story.onboard("northwind", "contoso")
    story.submit("northwind", "globex.com", "1000")
    contender = story.submit("contoso", "globex.com", "1000")
    story.later(days=91)
    story.run(ExpireProtections, actor=SYSTEM)
    story.project(store)

    assert open_conflicts(store) == []
    (item,) = review_queue(store, now=story.clock.now(), sla_hours=24)
    assert item.registration_id == contender
    assert item.review_reasons == ("key_protected",)


def test_review_items_name_the_registrations_behind_their_reasons(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind", "contoso")
    holder = story.submit("northwind", "globex.com", "1000")
    contender = story.submit("contoso", "globex.com", "1000")
    near = story.submit("contoso", "globex.de", "1000")  # same company name, another key
    story.project(store)

    items = {i.registration_id: i for i in review_queue(store, now=START, sla_hours=24)}
    assert items[contender].related_registrations == {"key_protected": (holder,)}
    near_duplicates = tuple(sorted((holder, contender), key=str))
    assert items[near].related_registrations == {"near_duplicate": near_duplicates}


def test_a_v1_sent_to_review_without_related_still_projects(story: Story, store: ReadStore) -> None:
    story.onboard("northwind", "contoso")
    story.submit("northwind", "globex.com", "1000")
    contender = story.submit("contoso", "globex.com", "1000")
    for message in story.messages():
        if message.name == "registration.sent_to_review":
            document = message.to_json()
            del document["data"]["related"]
            document["event_type"] = message.event_type.replace(".v2", ".v1")
            message = contract().from_json(document)
        apply_message(store, message)

    (item,) = review_queue(store, now=START, sla_hours=24)
    assert (item.registration_id, item.related_registrations) == (contender, {})


# -- delivery, freshness, schema ------------------------------------------------------------


def scenario(story: Story) -> None:
    story.onboard("northwind", "contoso")
    deal = story.convert(story.submit("northwind", "globex.com", "1000"))
    story.run(AttachPartner, deal_id=deal, partner_code="contoso", role="influencer")
    story.run(SetAttribution, deal_id=deal, shares={"northwind": D(40), "contoso": D(60)})
    story.run(AddDealNote, deal_id=deal, text="kick-off done")
    story.submit("contoso", "globex.com", "500")
    story.run(MarkDealWon, deal_id=deal)


def test_duplicated_delivery_changes_nothing(story: Story, store: ReadStore) -> None:
    scenario(story)
    messages = story.project(store)
    before = dump_tables(store)

    assert not any(apply_message(store, m) for m in messages)
    assert not any(apply_message(store, m) for m in reversed(messages))
    assert dump_tables(store) == before


def test_a_stale_redelivery_is_skipped_and_only_missing_projections_apply(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind")
    deal = story.open_deal("globex.com", "1000", "USD")
    story.run(MoveDealStage, deal_id=deal, stage="proposal")
    opened, moved = [m for m in story.messages() if m.aggregate_id == str(deal)]

    assert apply_message(store, opened, ["pipeline"]) is True
    assert apply_message(store, opened, ["pipeline"]) is False
    assert apply_message(store, moved) is True
    assert apply_message(store, opened) is False  # older than what every projection has
    assert applied_version(store, "attribution", deal) == 2
    # attribution skipped v1 (it came after v2), so it has no row for this deal
    assert by_code(store) == {}
    (row,) = pipeline_rows(store, now=story.clock.now())
    assert row.stage == "proposal"


def test_events_no_projection_uses_advance_positions_but_keep_no_bookkeeping(
    story: Story, store: ReadStore
) -> None:
    story.onboard("northwind")
    messages = story.project(store)
    record = next(m for m in messages if m.aggregate_type == "command_record")

    for projection in PROJECTIONS:
        assert applied_version(store, projection.name, record.aggregate_id) == 0
        assert projection_position(store, projection.name) == messages[-1].position
    assert apply_message(store, record) is False


def test_projection_position_is_the_highest_applied_ledger_position(
    story: Story, store: ReadStore
) -> None:
    scenario(story)
    messages = story.messages()
    assert projection_position(store, "pipeline") == 0
    for message in messages[:5]:
        apply_message(store, message, ["pipeline"])
    apply_message(store, messages[2], ["pipeline"])

    assert projection_position(store, "pipeline") == messages[4].position
    assert projection_position(store, "attribution") == 0
    with pytest.raises(ValueError, match="unknown projection"):
        projection_position(store, "pipelines")


def test_dropping_one_projection_and_replaying_rebuilds_it_identically(
    story: Story, store: ReadStore
) -> None:
    scenario(story)
    messages = story.project(store)
    before = dump_tables(store)

    store.drop_tables(ATTRIBUTION.all_tables)
    store.execute("DELETE FROM rm_position WHERE projection = 'attribution'")
    create_tables(store)
    assert partner_attribution(store) == []
    assert projection_position(store, "pipeline") == messages[-1].position
    for message in messages:
        apply_message(store, message, ["attribution"])
    assert dump_tables(store) == before

    store.drop_tables(t for p in PROJECTIONS for t in p.all_tables)
    store.execute("DELETE FROM rm_position")
    create_tables(store)
    assert all(rows == [] for rows in dump_tables(store).values())


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


BROKEN: list[tuple[str, Any]] = [
    ("deal.opened", lambda d: without(d, "amount")),
    ("deal.opened", lambda d: {**d, "amount": 1000}),
    ("deal.opened", lambda d: {**d, "amount": {"amount": "lots", "currency": "USD"}}),
    ("deal.opened", lambda d: {**d, "amount": {"amount": "1.0000001", "currency": "USD"}}),
    ("deal.opened", lambda d: {**d, "amount": {"amount": "1", "currency": "XXX"}}),
    ("deal.opened", lambda d: {**d, "stage": "won-ish"}),
    ("deal.opened", lambda d: {**d, "expected_close": "someday"}),
    ("deal.opened", lambda d: {**d, "customer": {"name": "Acme", "domain": 7, "country": "US"}}),
    ("deal.won", lambda d: {"attributed": {"northwind": {"amount": None, "currency": "USD"}}}),
    ("deal.attribution_split_set", lambda d: {"shares": ["northwind", "contoso"]}),
    ("registration.approved", lambda d: {**d, "protected_until": "2026-06-01T10:00:00"}),
    ("registration.sent_to_review", lambda d: {"reasons": "key_protected"}),
    ("registration.sent_to_review", lambda d: {**d, "related": {"key_protected": "x"}}),
    ("channel_protection.granted", lambda d: {**d, "registration_id": "not-a-uuid"}),
    ("partner.onboarded", lambda d: without(d, "code")),
]


@pytest.mark.parametrize(("name", "breakage"), BROKEN)
def test_a_message_with_broken_data_is_refused_and_leaves_no_trace(
    story: Story, store: ReadStore, name: str, breakage: Any
) -> None:
    scenario(story)
    story.submit("contoso", "initech.de", "300000")
    original = next(m for m in story.messages() if m.name == name)
    document = original.to_json()
    document["data"] = breakage(dict(document["data"]))

    with pytest.raises(InvalidMessage):
        apply_message(store, contract().from_json(document))
    assert applied_version(store, "pipeline", original.aggregate_id) == 0
    assert apply_message(store, original) is True


def test_a_message_parsed_from_kafka_bytes_projects_like_the_original(
    story: Story, store: ReadStore
) -> None:
    scenario(story)
    for message in story.messages():
        apply_message(store, contract().parse(message.to_bytes()))
    parsed = dump_tables(store)

    conn = sqlite3.connect(":memory:")
    direct = ReadStore(conn, "sqlite")
    create_tables(direct)
    story.project(direct)
    assert dump_tables(direct) == parsed


# -- store ------------------------------------------------------------------------------


def test_sqlite_statements_get_question_mark_placeholders(store: ReadStore) -> None:
    assert store.native("SELECT %s, '100%%' WHERE a = %s") == "SELECT ?, '100%' WHERE a = ?"
    postgres = ReadStore(sqlite3.connect(":memory:"), "postgres")
    assert postgres.native("SELECT %s") == "SELECT %s"
    assert ReadStore(sqlite3.connect(":memory:")).dialect == "sqlite"


def test_money_is_stored_as_exact_micro_units(store: ReadStore) -> None:
    assert to_micros(D("212345.67")) == 212_345_670_000
    assert to_micros(D("0.000001")) == 1
    assert from_micros(212_345_670_000, "USD") == D("212345.67")
    assert str(from_micros(180_000 * 10**6, "USD")) == "180000.00"
    assert str(from_micros(1_500_000, "JPY")) == "1.5"  # finer than yen: every digit kept
    assert str(from_micros(2_000_000, "JPY")) == "2"
    assert str(from_micros(1_234_567, "USD")) == "1.234567"
    with pytest.raises(ValueError, match="more than 6 decimals"):
        to_micros(D("0.0000001"))
    with pytest.raises(ValueError, match="too large"):
        to_micros(D(10) ** 13)


def test_creating_tables_twice_is_harmless(store: ReadStore) -> None:
    create_tables(store)
    assert set(dump_tables(store)) >= {"rm_pipeline_applied", "rm_position", "rm_pipeline_deal"}
