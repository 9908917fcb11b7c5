"""The published event schemas: complete, valid, true to real messages, and committed."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator, FormatChecker

import domain.command_record
import domain.deal
import domain.partner
import domain.privacy
import domain.protection
import domain.registration
from commands.models import (
    AddDealNote,
    ApproveRegistration,
    AssignSupport,
    AttachPartner,
    ChangePartnerTier,
    ContactIn,
    ConvertRegistration,
    CustomerIn,
    DetachPartner,
    EraseDataSubject,
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
    RequestSupport,
    ResolveSupport,
    ResubmitRegistration,
    ReviseDealAmount,
    ReviseDealCloseDate,
    SetAttribution,
    SubmitRegistration,
    SuspendPartner,
    WithdrawRegistration,
)
from domain.base import LedgerAggregate
from domain.clock import ManualClock
from domain.deal import LossReason, PartnerRole, SupportKind
from domain.partner import PartnerTier
from domain.registration import RegistrationStatus, RejectionReason
from projections.contract.catalogue import ENVELOPE_FIELDS
from projections.contract.encoding import cloudevent_headers, notification_to_message
from projections.contract.models import EventMessage
from projections.contract.schemas import (
    AGGREGATES,
    INTERNAL_AGGREGATE_TYPES,
    event_classes,
    event_schema,
    event_type_of_class,
    write_schemas,
)
from tests.support.actors import MANAGER, SALES, SYSTEM, partner
from tests.support.driver import Driver, in_memory_ledger

REPO = Path(__file__).resolve().parents[2]
DOCS_EVENTS = REPO / "docs" / "events"
CONSUMER_GUIDE = REPO / "docs" / "analytics-consumers.md"

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _aware_iso_datetime(value: object) -> bool:
    """RFC 3339 date-time with an offset (jsonschema checks date-time only with an
    optional dependency, so the test brings its own)."""
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).utcoffset() is not None


FORMATS = FormatChecker()
FORMATS.checks("date-time", raises=ValueError)(_aware_iso_datetime)


def _schemas() -> dict[str, dict[str, Any]]:
    return {event_type_of_class(cls)[1]: event_schema(cls) for cls in event_classes()}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FORMATS)


# -- a realistic ledger run ---------------------------------------------------------


class _Scenario:
    def __init__(self) -> None:
        self.clock = ManualClock(START)
        self.ledger = in_memory_ledger(self.clock)
        self.drive = Driver(self.ledger, "schema-test")
        self.run = self.drive.run
        self.created = self.drive.created
        self.day0 = START.date()

    def at(self, days: int, hours: int = 0) -> None:
        self.clock.set(START + timedelta(days=days, hours=hours))

    def close(self, days: int) -> date:
        return self.day0 + timedelta(days=days)

    def play(self) -> None:
        self.partners()
        globex = self.registrations()
        self.partner_deal(globex)
        self.direct_deal()
        self.at(100)
        outcome = self.run(ExpireProtections, SYSTEM)
        assert len(outcome.result["expired"]) == 2

    def partners(self) -> None:
        for code, name, tier, regions in (
            ("northwind", "Northwind Traders", PartnerTier.GOLD, ["EMEA", "NA"]),
            ("contoso", "Contoso Solutions", PartnerTier.SILVER, ["EMEA"]),
            ("fabrikam", "Fabrikam Integration", PartnerTier.PLATINUM, []),
        ):
            self.run(
                OnboardPartner, MANAGER, partner_code=code, name=name, tier=tier, regions=regions
            )
        self.run(ChangePartnerTier, MANAGER, partner_code="contoso", tier=PartnerTier.GOLD)
        self.run(SuspendPartner, MANAGER, partner_code="fabrikam", reason="audit pending")
        self.at(0, 2)
        self.run(ReinstatePartner, MANAGER, partner_code="fabrikam")

    def registrations(self) -> UUID:
        self.at(1)
        analytics = "Analytics Cloud"
        globex = self.created(
            SubmitRegistration,
            partner("northwind"),
            partner_code="northwind",
            customer=CustomerIn(name="Globex Corporation", domain="globex.com", country="US"),
            product_line=analytics,
            estimated_value=MoneyIn(amount=Decimal("180000"), currency="USD"),
            expected_close=self.close(85),
            notes="met the CIO",
            contact=ContactIn(name="Hank Scorpio", email="hank@globex.com", phone="+1 555 0100"),
        )
        assert self.ledger.get_registration(globex).approved_automatically

        self.at(1, 2)
        duplicate = self.created(
            SubmitRegistration,
            partner("contoso"),
            partner_code="contoso",
            customer=CustomerIn(name="Globex", domain="https://WWW.Globex.com/", country="US"),
            product_line=analytics,
            estimated_value=MoneyIn(amount=Decimal("95000"), currency="USD"),
            expected_close=self.close(90),
        )
        self.run(
            RejectRegistration,
            MANAGER,
            registration_id=duplicate,
            reason=RejectionReason.DUPLICATE,
            note="registered first by another partner",
        )

        self.at(1, 3)
        initech_customer = CustomerIn(name="Initech", domain="initech.co.uk", country="GB")
        initech = self.created(
            SubmitRegistration,
            partner("fabrikam"),
            partner_code="fabrikam",
            customer=initech_customer,
            product_line=analytics,
            estimated_value=MoneyIn(amount=Decimal("300000"), currency="EUR"),
            expected_close=self.close(120),
        )
        self.run(RequestRegistrationInfo, MANAGER, registration_id=initech, note="which team?")
        self.run(
            ResubmitRegistration,
            partner("fabrikam"),
            registration_id=initech,
            customer=CustomerIn(name="Initech Ltd", domain="initech.co.uk", country="GB"),
            estimated_value=MoneyIn(amount=Decimal("280000.5"), currency="EUR"),
            expected_close=self.close(110),
            notes="the data team",
        )
        self.run(ApproveRegistration, MANAGER, registration_id=initech)

        self.at(1, 4)
        acme = self.created(
            SubmitRegistration,
            partner("contoso"),
            partner_code="contoso",
            customer=CustomerIn(name="Acme", domain="acme.com", country="DE"),
            product_line="Security",
            estimated_value=MoneyIn(amount=Decimal("10000"), currency="EUR"),
            expected_close=self.close(30),
        )
        self.run(WithdrawRegistration, partner("contoso"), registration_id=acme, note="lost")

        # An amount given in exponent form is published as such ("1E+5").
        umbrella = self.created(
            SubmitRegistration,
            partner("northwind"),
            partner_code="northwind",
            customer=CustomerIn(name="Umbrella", domain="umbrella.com", country="US"),
            product_line="Security",
            estimated_value=MoneyIn(amount=Decimal("1E+5"), currency="USD"),
            expected_close=self.close(60),
        )
        assert self.ledger.get_registration(umbrella).status is RegistrationStatus.APPROVED

        self.at(2)
        self.run(ExtendProtection, MANAGER, registration_id=globex, days=30)
        return globex

    def partner_deal(self, registration_id: UUID) -> None:
        self.at(3)
        deal = self.created(
            ConvertRegistration,
            SALES,
            registration_id=registration_id,
            title="Globex analytics",
            owner="sam",
            region="NA",
        )
        self.run(MoveDealStage, SALES, deal_id=deal, stage="qualified", reason="budget")
        self.run(
            ReviseDealAmount,
            SALES,
            deal_id=deal,
            amount=MoneyIn(amount=Decimal("212345.67"), currency="USD"),
            reason="scope grew",
        )
        self.run(ReviseDealCloseDate, SALES, deal_id=deal, expected_close=self.close(70))
        self.run(
            AttachPartner, SALES, deal_id=deal, partner_code="contoso", role=PartnerRole.INFLUENCER
        )
        self.run(
            SetAttribution,
            SALES,
            deal_id=deal,
            shares={"northwind": Decimal("70"), "contoso": Decimal("30")},
        )
        self.run(
            AttachPartner, SALES, deal_id=deal, partner_code="fabrikam", role=PartnerRole.SERVICES
        )
        self.run(DetachPartner, SALES, deal_id=deal, partner_code="fabrikam")
        support = self.run(
            RequestSupport,
            partner("northwind"),
            deal_id=deal,
            kind=SupportKind.PRESALES,
            note="need an architect",
        )
        request_id = support.result["request_id"]
        self.run(AssignSupport, SALES, deal_id=deal, request_id=request_id, assignee="priya")
        self.run(ResolveSupport, SALES, deal_id=deal, request_id=request_id, resolution="done")
        self.run(AddDealNote, partner("northwind"), deal_id=deal, text="CFO signs Friday")
        self.at(40)
        self.run(MarkDealWon, SALES, deal_id=deal)

    def direct_deal(self) -> None:
        self.at(41)
        deal = self.created(
            OpenDeal,
            SALES,
            title="Hooli platform",
            customer=CustomerIn(name="Hooli", domain="hooli.xyz", country="US"),
            product_line="Analytics Cloud",
            amount=MoneyIn(amount=Decimal("50000.50"), currency="EUR"),
            expected_close=self.close(80),
            owner="sam",
        )
        self.run(
            MarkDealLost,
            SALES,
            deal_id=deal,
            reason=LossReason.COMPETITOR,
            competitor="Pied Piper",
            note="price",
        )
        self.run(ReopenDeal, SALES, deal_id=deal, reason="they came back", stage="proposal")
        self.run(MarkDealLost, SALES, deal_id=deal, reason=LossReason.NO_BUDGET)
        # Hooli's contact asks to be forgotten, twice (a note came in between).
        self.run(EraseDataSubject, MANAGER, subject="buyer@hooli.xyz")
        self.run(AddDealNote, SALES, deal_id=deal, text="asked us to call in Q3")
        self.run(EraseDataSubject, MANAGER, subject="hooli.xyz")


@pytest.fixture(scope="module")
def messages() -> Iterator[list[EventMessage]]:
    scenario = _Scenario()
    try:
        scenario.play()
        ledger = scenario.ledger
        notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
        yield [notification_to_message(ledger.mapper, n) for n in notifications]
    finally:
        scenario.ledger.close()


# -- the schemas themselves -----------------------------------------------------------


def test_every_event_class_of_every_aggregate_has_a_schema() -> None:
    classes = event_classes()
    assert len(classes) == len(set(classes)) == 43
    per_aggregate = {a.__name__: 0 for a in AGGREGATES}
    for cls in classes:
        per_aggregate[cls.__qualname__.split(".")[0]] += 1
    assert per_aggregate == {
        "Partner": 4,
        "Registration": 11,
        "ChannelProtection": 8,
        "CustomerIndex": 3,
        "Deal": 14,
        "CommandRecord": 1,
        "DataSubject": 2,
    }
    event_types = [event_type_of_class(cls)[1] for cls in classes]
    assert len(set(event_types)) == len(event_types)
    assert "dealledger.partner.onboarded.v2" in event_types
    assert "dealledger.registration.approved.v1" in event_types


def test_no_aggregate_of_the_ledger_is_left_out() -> None:
    modules = (domain.partner, domain.registration, domain.protection, domain.deal, domain.privacy)
    assert {domain.command_record.CommandRecord} | {
        obj
        for module in modules
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, LedgerAggregate) and obj is not LedgerAggregate
    } == set(AGGREGATES)

    def walk(cls: type[Any]) -> Iterator[type[Any]]:
        sub: type[Any]
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    ours = {
        cls
        for cls in walk(LedgerAggregate)
        if cls.__module__.split(".")[0] in ("domain", "commands")
    }
    assert ours <= set(AGGREGATES)


def test_the_envelope_fields_are_those_every_ledger_event_carries() -> None:
    base = {f.name for f in dataclasses.fields(LedgerAggregate.Created)}
    assert base == ENVELOPE_FIELDS


@pytest.mark.parametrize("cls", event_classes(), ids=lambda c: c.__qualname__)
def test_each_schema_is_a_valid_draft_2020_12_schema(cls: type) -> None:
    schema = event_schema(cls)
    Draft202012Validator.check_schema(schema)
    aggregate_type, event_type = event_type_of_class(cls)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://dealledger.example/schemas/{event_type}.json"
    assert schema["properties"]["event_type"]["const"] == event_type
    assert schema["properties"]["aggregate_type"]["const"] == aggregate_type
    assert schema["additionalProperties"] is False
    data = schema["$defs"][schema["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
    assert data["additionalProperties"] is False
    assert data.get("required", []) == list(data["properties"])
    assert not set(data["properties"]) & ENVELOPE_FIELDS


def test_the_docstring_becomes_the_description() -> None:
    schema = event_schema(domain.partner.Partner.Onboarded)
    assert schema["description"].startswith("v2 added `regions`")
    assert "description" not in event_schema(domain.deal.Deal.Won)


def test_the_date_time_format_is_really_checked() -> None:
    assert FORMATS.conforms("2026-01-05T09:00:00+00:00", "date-time")
    assert not FORMATS.conforms("2026-01-05T09:00:00", "date-time")
    assert not FORMATS.conforms("yesterday", "date-time")
    assert not FORMATS.conforms("2026-02-30", "date")
    assert not FORMATS.conforms("not-a-uuid", "uuid")


# -- real messages ---------------------------------------------------------------------


def test_the_scenario_publishes_every_event_type(messages: list[EventMessage]) -> None:
    published = {m.event_type for m in messages}
    missing = set(_schemas()) - published
    assert not missing, f"extend the scenario so it also records {sorted(missing)}"


def test_every_published_message_follows_the_schema_of_its_type(
    messages: list[EventMessage],
) -> None:
    schemas = _schemas()
    validators = {event_type: _validator(schema) for event_type, schema in schemas.items()}
    assert len(messages) > 100
    for message in messages:
        published = json.loads(message.to_bytes())
        assert published == message.to_json()
        errors = [e.message for e in validators[message.event_type].iter_errors(published)]
        assert not errors, f"{message.event_type} at {message.position}: {errors}"
        headers = dict(cloudevent_headers(message.to_json()))
        assert headers["ce_type"].decode() == message.event_type
        assert headers["ce_id"].decode() == message.event_id


def test_values_are_published_as_the_schemas_promise(messages: list[EventMessage]) -> None:
    won = next(m for m in messages if m.event_type == "dealledger.deal.won.v1")
    assert won.to_json()["data"]["attributed"] == {
        "northwind": {"amount": "148641.97", "currency": "USD"},
        "contoso": {"amount": "63703.70", "currency": "USD"},
    }
    umbrella = next(
        m
        for m in messages
        if m.event_type == "dealledger.registration.submitted.v1"
        and m.data.customer.domain == "umbrella.com"
    )
    assert umbrella.to_json()["data"]["estimated_value"] == {"amount": "1E+5", "currency": "USD"}
    direct = next(
        m
        for m in messages
        if m.event_type == "dealledger.deal.opened.v1" and m.data.registration_id is None
    )
    assert direct.data.sourcing_partner is None
    assert direct.data.sourcing_role is None


def _first(messages: list[EventMessage], event_type: str) -> dict[str, Any]:
    message = next(m for m in messages if m.event_type == event_type)
    return copy.deepcopy(message.to_json())


def _set_amount_to_float(m: dict[str, Any]) -> None:
    m["data"]["amount"]["amount"] = 212345.67


def _drop_data_field(m: dict[str, Any]) -> None:
    del m["data"]["reason"]


def _add_data_field(m: dict[str, Any]) -> None:
    m["data"]["probability"] = "50"


def _add_envelope_field(m: dict[str, Any]) -> None:
    m["partition"] = 3


def _naive_time(m: dict[str, Any]) -> None:
    m["occurred_at"] = m["occurred_at"].removesuffix("+00:00")


def _wrong_event_type(m: dict[str, Any]) -> None:
    m["event_type"] = "dealledger.deal.amount_revised.v2"


def _bad_currency(m: dict[str, Any]) -> None:
    m["data"]["amount"]["currency"] = "usd"


def _unknown_role(m: dict[str, Any]) -> None:
    m["actor"]["role"] = "ceo"


def _version_zero(m: dict[str, Any]) -> None:
    m["aggregate_version"] = 0


def _bad_uuid(m: dict[str, Any]) -> None:
    m["aggregate_id"] = "deal-1"


@pytest.mark.parametrize(
    "mutate",
    [
        _set_amount_to_float,
        _drop_data_field,
        _add_data_field,
        _add_envelope_field,
        _naive_time,
        _wrong_event_type,
        _bad_currency,
        _unknown_role,
        _version_zero,
        _bad_uuid,
    ],
)
def test_a_mutated_message_fails_validation(
    messages: list[EventMessage], mutate: Callable[[dict[str, Any]], None]
) -> None:
    event_type = "dealledger.deal.amount_revised.v1"
    validator = _validator(_schemas()[event_type])
    message = _first(messages, event_type)
    assert validator.is_valid(message)
    mutate(message)
    assert not validator.is_valid(message)


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("dealledger.deal.lost.v1", "reason", "bad_luck"),
        ("dealledger.deal.lost.v1", "competitor", 42),
        ("dealledger.deal.attribution_split_set.v1", "shares", {"northwind": 70}),
        ("dealledger.registration.approved.v1", "automatically", "yes"),
        ("dealledger.registration.submitted.v1", "expected_close", "2026-13-01"),
        ("dealledger.partner.onboarded.v2", "regions", "EMEA"),
    ],
)
def test_a_data_field_of_the_wrong_kind_fails_validation(
    messages: list[EventMessage], event_type: str, field: str, value: Any
) -> None:
    validator = _validator(_schemas()[event_type])
    message = _first(messages, event_type)
    message["data"][field] = value
    assert not validator.is_valid(message)


# -- the committed copy -------------------------------------------------------------


def test_docs_events_is_up_to_date_with_write_schemas(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert written[-1] == tmp_path / "index.json"
    assert len(written) == len(event_classes()) + 1
    expected = {p.name: p.read_text(encoding="utf-8") for p in written}
    committed = {p.name: p.read_text(encoding="utf-8") for p in DOCS_EVENTS.glob("*.json")}
    hint = 'regenerate with write_schemas(Path("docs/events")) (delete stale files first)'
    assert sorted(committed) == sorted(expected), hint
    for name, text in expected.items():
        assert committed[name] == text, f"docs/events/{name} is stale; {hint}"


def test_the_index_lists_every_event_type_with_its_aggregate(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    entries = index["event_types"]
    assert [e["event_type"] for e in entries] == list(_schemas())
    for entry in entries:
        assert entry["ce_type"] == entry["event_type"]
        assert entry["event_type"].startswith(f"dealledger.{entry['aggregate_type']}.")
        assert entry["internal"] == (entry["aggregate_type"] in INTERNAL_AGGREGATE_TYPES)
        assert (tmp_path / entry["schema"]).is_file()


def test_the_consumer_guide_catalogues_every_event_type() -> None:
    guide = CONSUMER_GUIDE.read_text(encoding="utf-8")
    missing = [t for t in _schemas() if f"`{t}`" not in guide]
    assert not missing, f"docs/analytics-consumers.md does not list {missing}"


def test_docs_asyncapi_is_up_to_date(tmp_path: Path) -> None:
    from infra.kafka.asyncapi import write_asyncapi

    fresh = write_asyncapi(tmp_path / "asyncapi.json").read_text()
    committed = (REPO / "docs" / "asyncapi.json").read_text()
    assert fresh == committed, "run `dealledger schemas` and commit docs/asyncapi.json"


def test_the_asyncapi_document_has_every_event_type_on_the_events_channel() -> None:
    from infra.kafka.asyncapi import asyncapi_document

    document = asyncapi_document()
    names = {
        document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]
        for ref in document["channels"]["events"]["messages"].values()
    }
    assert names == set(_schemas())
