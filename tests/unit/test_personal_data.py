"""Sealing personal fields (docs/privacy.md): the declared fields are the documented
ones, a sealed value opens only under its own key and intact, every process drops its
keys after an erasure made by another, the topic withholds even old plaintext, and the
CLI refuses what it cannot erase."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import Mapper, Notification
from pydantic import ValidationError

from commands.keyring import Keyring, MemoryKeyTable
from commands.models import AddDealNote, ContactIn
from commands.personal_data import Sealed, opened, personal_paths
from domain.clock import ManualClock
from domain.deal import Deal
from domain.privacy import ERASED, WITHHELD, subject_named
from domain.registration import Registration
from infra.cli import main
from projections.contract.catalogue import event_kinds
from projections.contract.encoding import Encoder
from tests.support.actors import SALES
from tests.support.driver import Driver, in_memory_ledger
from tests.support.env import without_settings
from tests.unit.audit_story import write_story

PRIVACY = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def test_the_documented_personal_fields_are_exactly_the_declared_ones() -> None:
    rows = re.findall(r"^\| `([a-z_.]+)` \| ([a-z_, ]+) \|$", PRIVACY.read_text(), re.M)
    documented = {name: tuple(f.strip() for f in fields.split(",")) for name, fields in rows}
    declared = {
        kind.name: tuple(getattr(kind.cls, "personal_fields", ()))
        for kind in event_kinds()
        if getattr(kind.cls, "personal_fields", ())
    }
    assert documented == declared
    for kind in event_kinds():
        for name in getattr(kind.cls, "personal_fields", ()):
            assert kind.fields[name] is str, f"{kind.name}.{name} is personal but not text"
    assert Registration.personal_state == ("notes", "decision_note", "contact.*")
    assert set(Deal.personal_state) == {"support.*.note", "support.*.resolution"}


# Text fields that are not personal data, each for a reason docs/privacy.md gives:
# codes, names of organisations and products, the vendor's own staff, pipeline words.
PUBLIC_TEXT = frozenset(
    {
        "partner.onboarded.code",
        "partner.onboarded.name",
        "partner.suspended.reason",  # about the partner organisation
        "registration.submitted.partner_code",
        "registration.submitted.product_line",
        "channel_protection.opened.conflict_key",
        "channel_protection.claimed.partner_code",
        "channel_protection.granted.partner_code",
        "customer_index.opened.value",  # a company name or domain
        "customer_index.opened.product_line",
        "customer_index.claimed.conflict_key",
        "deal.opened.title",
        "deal.opened.product_line",
        "deal.opened.owner",  # the vendor's seller
        "deal.opened.region",
        "deal.opened.pipeline",
        "deal.opened.stage",
        "deal.opened.sourcing_partner",
        "deal.stage_changed.from_stage",
        "deal.stage_changed.to_stage",
        "deal.partner_attached.partner_code",
        "deal.partner_detached.partner_code",
        "deal.support_requested.request_id",
        "deal.support_assigned.request_id",
        "deal.support_assigned.assignee",  # the vendor's staff
        "deal.support_resolved.request_id",
        "deal.lost.competitor",  # a company
        "deal.reopened.stage",
        "command_record.handled.command_type",
        "command_record.handled.fingerprint",
        "data_subject.erased.subject",  # the customer's domain
    }
)


def test_every_text_field_is_either_personal_or_known_public() -> None:
    """A new text field is stored in the clear only once someone has said why."""
    text_fields = {
        f"{kind.name}.{name}"
        for kind in event_kinds()
        for name, annotation in kind.fields.items()
        if annotation in (str, str | None) and name not in getattr(kind.cls, "personal_fields", ())
    }
    assert text_fields == PUBLIC_TEXT


def test_a_sealed_value_opens_only_under_its_own_key_and_intact() -> None:
    keyring = Keyring(MemoryKeyTable())
    stream, other = uuid4(), uuid4()
    keyring.ensure({stream: "customer.example", other: "other.example"})
    mine, theirs = keyring.live(stream), keyring.live(other)
    assert mine is not None
    assert theirs is not None
    sealed = Sealed.of("call buyer@customer.example", mine)
    assert b"buyer" not in sealed.blob
    assert opened(sealed.to_json(), keyring) == "call buyer@customer.example"
    moved = Sealed(theirs[0], sealed.blob)  # the same bytes, claimed by another key
    with pytest.raises(ValueError, match="fails its check"):
        opened(moved.to_json(), keyring)
    flipped = Sealed(mine[0], sealed.blob[:-1] + bytes([sealed.blob[-1] ^ 1]))
    with pytest.raises(ValueError, match="fails its check"):
        opened(flipped.to_json(), keyring)


def test_every_process_drops_its_keys_once_another_erases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Keyring, "RECHECK_SECONDS", 0.0)
    table = MemoryKeyTable()
    writer, reader = Keyring(table), Keyring(table)
    emptied: list[bool] = []
    reader.on_erasure.append(lambda: emptied.append(True))
    stream = uuid4()
    writer.ensure({stream: "customer.example"})
    key = writer.live(stream)
    assert key is not None
    sealed = Sealed.of("a note", key)
    reader.refresh(now=True)
    assert opened(sealed.to_json(), reader) == "a note"  # the reader caches the key now

    assert writer.erase(table.live_key_ids("customer.example")) == [stream]
    assert opened(sealed.to_json(), reader) == ERASED
    assert emptied == [True]
    assert reader.is_erased(key[0])
    # New text about the subject gets a new key.
    writer.ensure({stream: "customer.example"})
    renewed = writer.live(stream)
    assert renewed is not None
    assert renewed[0] != key[0]
    assert writer.erase(table.live_key_ids("nobody.example")) == []


def test_snapshots_seal_the_personal_parts_of_the_state_only() -> None:
    ledger = in_memory_ledger(ManualClock(datetime(2026, 3, 1, tzinfo=UTC)))
    drive = Driver(ledger)
    deal_id = drive.open_deal("customer.example")
    ledger.take_snapshot(deal_id)
    (stored,) = ledger.snapshots.recorder.select_events(deal_id)  # type: ignore[union-attr]
    assert personal_paths(ledger.snapshots.mapper.to_domain_event(stored)) == (  # type: ignore[union-attr]
        ("state", "support", "*", "note"),
        ("state", "support", "*", "resolution"),
    )
    drive.run(AddDealNote, SALES, deal_id=deal_id, text="first")
    deal = ledger.get_deal(deal_id)
    deal.support = {"r1": {"note": "secret note", "status": "open", "kind": "legal"}}
    snapshot_state = orjson.loads(ledger.mapper.to_stored_event(_snapshot_of(deal)).state)
    note = snapshot_state["state"]["support"]["r1"]["note"]
    assert note["_type_"] == "sealed"
    assert snapshot_state["state"]["support"]["r1"]["status"] == "open"
    assert snapshot_state["state"]["title"] == deal.title


def _snapshot_of(aggregate: Any) -> Any:
    from eventsourcing.domain import Snapshot

    return Snapshot.take(aggregate)


def test_the_topic_withholds_personal_text_even_stored_before_it_was_sealed() -> None:
    ledger = in_memory_ledger(ManualClock(datetime(2026, 3, 1, tzinfo=UTC)))
    drive = Driver(ledger)
    deal_id = drive.open_deal("customer.example")
    drive.run(AddDealNote, SALES, deal_id=deal_id, text="sealed note")
    (*_, sealed, _record) = ledger.recorder.select_notifications(1, 100)
    # The event as versions before sealing stored it: by the library's plain mapper.
    plain_mapper = Mapper[UUID](ledger.mapper.transcoder)
    legacy = plain_mapper.to_stored_event(ledger.mapper.to_domain_event(sealed))
    state = legacy.state.replace(b'"sealed note"', b'"plain note"')
    assert b'"plain note"' in state
    notification = Notification(
        id=999,
        originator_id=legacy.originator_id,
        originator_version=legacy.originator_version,
        topic=legacy.topic,
        state=state,
    )
    for stored, text in ((sealed, "sealed note"), (notification, "plain note")):
        published = json.loads(Encoder(ledger.mapper).encode(stored).value)
        assert published["data"]["text"] == WITHHELD
        revealed = Encoder(ledger.mapper, personal=True).fields(stored)[4]
        assert revealed["text"] == text


def test_a_contact_that_is_not_one_is_refused_without_repeating_it() -> None:
    for given, field in (({"email": "bob-at-example"}, "email"), ({"phone": "call me"}, "phone")):
        with pytest.raises(ValidationError) as refused:
            ContactIn(name="Bob", **given)
        (error,) = refused.value.errors()
        assert error["loc"] == (field,)
        assert given[field] not in error["msg"]
    with pytest.raises(ValidationError, match="needs a name, an email or a phone"):
        ContactIn()
    assert ContactIn(phone="+1 (555) 010-0100 ext. 12").to_domain().phone


def test_a_subject_is_a_customer_domain_or_an_address_at_it() -> None:
    assert subject_named("Buyer@Customer.Example") == "customer.example"
    assert subject_named("https://www.customer.example/contact") == "customer.example"
    with pytest.raises(Exception, match="names no data subject"):
        subject_named("not a domain!!")


def test_the_cli_erases_as_a_manager_only_and_says_what_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without_settings(monkeypatch)
    monkeypatch.setenv("DEALLEDGER_SQLITE_PATH", str(tmp_path / "ledger.sqlite"))
    from infra.settings import Settings

    write_story(Settings(sqlite_path=tmp_path / "ledger.sqlite"))
    assert main(["erase", "globex.com", "--by", "ann", "--role", "auditor"]) == 1
    assert "may not erase" in capsys.readouterr().err
    assert main(["erase", "not a domain!!", "--by", "carol", "--role", "admin"]) == 1
    assert "names no data subject" in capsys.readouterr().err
    assert main(["erase", "globex.com", "--by", "carol", "--role", "partner"]) == 2
    capsys.readouterr()
    args = ["erase", "sales@globex.com", "--by", "carol", "--role", "channel_manager"]
    assert main([*args, "--command-id", "erase-1"]) == 0
    out = capsys.readouterr().out
    assert "erased globex.com" in out
    assert main([*args, "--command-id", "erase-1"]) == 0
    assert "replayed" in capsys.readouterr().out
    assert main(["verify", "--all"]) == 0
