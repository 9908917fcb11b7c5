"""Crypto-shredding (docs/privacy.md, invariant I9): personal fields are stored encrypted
under their data subject's keys; `dealledger erase` destroys the keys, after which the
text is found nowhere (searched byte-wise) and every chain, tree and checkpoint still
verifies. Runs on PostgreSQL (with the relay and Kafka) and on SQLite."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper
from kafka import KafkaConsumer, TopicPartition

from commands.keyring import Keyring
from commands.models import (
    AddDealNote,
    ContactIn,
    EraseDataSubject,
    MarkDealLost,
    MoveDealStage,
    ReopenDeal,
    RequestRegistrationInfo,
    RequestSupport,
    ResolveSupport,
    ResubmitRegistration,
    SubmitRegistration,
)
from domain.clock import ManualClock
from domain.deal import LossReason, SupportKind
from domain.errors import Forbidden
from domain.privacy import ERASED, WITHHELD
from infra.audit import api
from infra.bootstrap import Wiring, build_ledger
from infra.kafka.admin import ensure_topics
from infra.logging import get_logger
from infra.settings import Settings
from projections.contract.encoding import Encoder
from tests.integration.flow import ROOT, drop_schema, isolated_settings, settings_env
from tests.support.actors import MANAGER, SALES, partner
from tests.support.driver import Driver, customer, money
from tests.support.tampering import RawStore

SNAPSHOT_EVERY = 10  # small, so the deal's snapshots (which hold support notes) exist


@dataclass
class Story:
    settings: Settings
    secrets: list[str]  # every personal text written about customer.example
    kept: str  # a note about another customer, which must survive
    registration_id: UUID
    deal_id: UUID
    other_deal_id: UUID


def _secret(what: str) -> str:
    # Unique per run, so a byte found anywhere can only have come from this test.
    return f"{what} buyer@customer.example +1 555 0100 {uuid.uuid4().hex}"


def _write(settings: Settings) -> Story:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    ledger = build_ledger(settings, clock=clock)
    ledger.snapshotting_intervals = {k: SNAPSHOT_EVERY for k in ledger.snapshotting_intervals}  # type: ignore[misc]
    drive = Driver(ledger, prefix=f"erase-{uuid.uuid4().hex[:6]}")
    secrets: list[str] = []

    def said(what: str) -> str:
        """A personal text to write (a contact's part is kept as it is)."""
        text = what if what.startswith(("Bea ", "bea.", "+1 ")) else _secret(what)
        secrets.append(text)
        return text

    try:
        drive.onboard("northwind")
        submitted = drive.submission("northwind", "customer.example", amount="5000000")
        tag = uuid.uuid4().hex
        contact = ContactIn(
            name=said(f"Bea {tag}"),
            email=said(f"bea.{tag}@customer.example"),
            phone=said(f"+1 555 {int(tag[:8], 16) % 10**8:08d}"),
        )
        registration = drive.created(
            SubmitRegistration,
            partner("northwind"),
            **submitted.model_dump(exclude={"command_id", "actor", "notes", "contact"}),
            notes=said("submitted"),
            contact=contact,
        )
        drive.run(RequestRegistrationInfo, MANAGER, registration_id=registration, note=said("info"))
        drive.run(
            ResubmitRegistration,
            partner("northwind"),
            registration_id=registration,
            customer=customer("customer.example"),
            estimated_value=money("5000001"),
            expected_close=drive.close_date(),
            notes=said("resubmitted"),
        )
        drive.approve(registration)
        deal = drive.convert(registration, title="Customer analytics")
        drive.run(MoveDealStage, SALES, deal_id=deal, stage="proposal", reason=said("stage"))
        asked = drive.run(
            RequestSupport, SALES, deal_id=deal, kind=SupportKind.TECHNICAL, note=said("support")
        )
        request_id = asked.result["request_id"]
        drive.run(
            ResolveSupport, SALES, deal_id=deal, request_id=request_id, resolution=said("done")
        )
        for i in range(SNAPSHOT_EVERY):
            drive.run(AddDealNote, SALES, deal_id=deal, text=said(f"note {i}"))
        drive.run(
            MarkDealLost, SALES, deal_id=deal, reason=LossReason.COMPETITOR, note=said("lost")
        )
        clock.advance(timedelta(hours=1))
        drive.run(ReopenDeal, SALES, deal_id=deal, reason=said("reopened"))
        kept = _secret("kept")
        other = drive.open_deal("other.example", title="Other platform")
        drive.run(AddDealNote, SALES, deal_id=other, text=kept)
    finally:
        ledger.close()
    return Story(settings, secrets, kept, registration, deal, other)


@pytest.fixture(params=["sqlite", "postgres"])
def story(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Story]:
    if request.param == "postgres":
        settings = isolated_settings(
            request.getfixturevalue("database_url"), request.getfixturevalue("kafka_bootstrap")
        )
    else:
        settings = Settings(sqlite_path=tmp_path / "ledger.sqlite")
    try:
        yield _write(settings)
    finally:
        if settings.uses_postgres:
            drop_schema(settings)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _database_bytes(settings: Settings) -> bytes:
    """Everything the database holds for this ledger: every row of every table of its
    schema (PostgreSQL, as COPY writes them), or the SQLite files themselves."""
    if not settings.uses_postgres:
        assert settings.sqlite_path is not None
        files = sorted(settings.sqlite_path.parent.glob("*.sqlite*"))
        assert files
        return b"".join(f.read_bytes() for f in files)
    assert settings.database_url is not None
    out = io.BytesIO()
    with psycopg.connect(settings.database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                (settings.database_schema,),
            )
        ]
        assert len(tables) > 5
        for table in tables:
            query = f'COPY "{settings.database_schema}"."{table}" TO STDOUT'
            with conn.cursor().copy(query) as copy:
                for block in copy:
                    out.write(bytes(block))
    return out.getvalue()


def _snapshot_in_the_clear(settings: Settings, registration_id: UUID) -> None:
    """A snapshot as versions before sealing took them, with the text in the clear."""
    ledger = build_ledger(settings)
    try:
        snapshot = Snapshot.take(ledger.get_registration(registration_id))
        stored = Mapper[UUID](ledger.mapper.transcoder).to_stored_event(snapshot)
        assert b"resubmitted buyer@customer.example" in stored.state
        ledger.snapshots.recorder.insert_events([stored])  # type: ignore[union-attr]
    finally:
        ledger.close()


def _found(secret: str, haystack: bytes) -> bool:
    """Searched byte-wise, as text and as the hex form bytea columns are copied in."""
    raw = secret.encode()
    return raw in haystack or raw.hex().encode() in haystack.lower()


def _topic_values(settings: Settings) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        partitions = [
            TopicPartition(settings.events_topic, p)
            for p in consumer.partitions_for_topic(settings.events_topic) or ()
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        values: list[bytes] = []
        while any(consumer.position(p) < ends[p] for p in partitions):
            for records in consumer.poll(timeout_ms=2000).values():
                values.extend(r.value for r in records)
        return values
    finally:
        consumer.close()


def _published(story: Story) -> list[bytes]:
    """The events as consumers get them: from Kafka (PostgreSQL, through the relay) or
    from the encoder the embedded feed and rebuilds use (SQLite)."""
    if story.settings.uses_postgres:
        ensure_topics(story.settings, get_logger("test"))
        wiring = Wiring(story.settings)
        try:
            wiring.relay().drain()
        finally:
            wiring.close()
        return _topic_values(story.settings)
    ledger = build_ledger(story.settings)
    try:
        encoder = Encoder(ledger.mapper)
        return [encoder.encode(n).value for n in ledger.recorder.select_notifications(1, 10_000)]
    finally:
        ledger.close()


def _texts(story: Story) -> tuple[str, list[str], dict[str, str], list[str]]:
    """(registration notes, deal notes, support request, the registration's contact
    and every personal text in the deal's audit history) as the ledger serves them."""
    ledger = build_ledger(story.settings)
    try:
        registration = ledger.get_registration(story.registration_id)
        deal = ledger.get_deal(story.deal_id)
        shown = json.dumps([e.to_json() for e in api.history(ledger, story.deal_id)])
        (support,) = deal.support.values()
        contact = " ".join(registration.contact.values())
        return registration.notes, ledger.deal_notes(story.deal_id), support, [shown, contact]
    finally:
        ledger.close()


def test_personal_text_is_never_stored_or_published_in_the_clear(story: Story) -> None:
    stored = _database_bytes(story.settings)
    published = b"\n".join(_published(story))
    for secret in [*story.secrets, story.kept]:
        assert not _found(secret, stored), "personal text stored in the clear"
        assert not _found(secret, published), "personal text published"
    assert WITHHELD.encode() in published
    # ... yet the ledger reads it back to those who may read the deal.
    notes, deal_notes, support, shown = _texts(story)
    assert shown[1] == " ".join(story.secrets[:3])  # the contact, as given
    assert notes in story.secrets
    assert deal_notes[0] in story.secrets
    assert support["note"] in story.secrets
    assert support["resolution"] in story.secrets


def test_erasure_leaves_the_text_nowhere_and_every_proof_intact(
    story: Story, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = story.settings
    before = _published(story)
    # A long-running process (the API, say) holds the deal and registration in its
    # aggregate cache, text and all, when another process erases.
    running = build_ledger(settings)
    assert running.get_deal(story.deal_id).support
    assert running.get_registration(story.registration_id).notes in story.secrets
    _snapshot_in_the_clear(settings, story.registration_id)
    raw = RawStore(settings)
    keys = [bytes(k) for (k,) in raw.run(
        "SELECT key FROM {events}_subject_keys WHERE subject = %s", "customer.example"
    )]  # fmt: skip
    assert len(keys) == 2  # the registration's and the deal's

    refused = _cli(settings, "erase", "customer.example", "--by", "sam", "--role", "sales")
    assert refused.returncode == 1, refused.stderr
    assert "forbidden" in refused.stderr
    assert _texts(story)[0] in story.secrets, "a refused erasure destroyed keys"

    first = ["erase", "Buyer@Customer.example", "--by", "carol", "--role", "channel_manager"]
    first += ["--command-id", f"first-{uuid.uuid4()}"]
    erased = _cli(settings, *first)
    assert erased.returncode == 0, erased.stderr
    assert "erased customer.example: 2 data key(s) destroyed" in erased.stdout

    # The running process drops its keys and cached aggregates at its next look.
    monkeypatch.setattr(Keyring, "RECHECK_SECONDS", 0.0)
    try:
        assert running.get_registration(story.registration_id).notes == ERASED
        (request,) = running.get_deal(story.deal_id).support.values()
        assert (request["note"], request["resolution"]) == (ERASED, ERASED)
    finally:
        running.close()

    # Everywhere the ledger serves it: the write model, its snapshots, the history.
    notes, deal_notes, support, history = _texts(story)
    assert notes == ERASED
    assert deal_notes
    assert set(deal_notes) == {ERASED}
    assert (support["note"], support["resolution"]) == (ERASED, ERASED)
    assert history[1] == " ".join([ERASED] * 3)  # the contact's name, email and phone
    for secret in story.secrets:
        assert secret not in history[0]
    assert ERASED in history[0]

    # Another customer's text is untouched; new text about the erased one is kept
    # under a new key.
    ledger = build_ledger(settings)
    try:
        assert story.kept in ledger.deal_notes(story.other_deal_id)
        later = _secret("after erasure")
        Driver(ledger, prefix="later").run(AddDealNote, SALES, deal_id=story.deal_id, text=later)
        assert ledger.deal_notes(story.deal_id)[-1] == later
        # The first erasure re-sent (a redelivery) replays: it destroys the keys it
        # named, not the one made since.
        replayed = _cli(settings, *first)
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed" in replayed.stdout
        assert ledger.deal_notes(story.deal_id)[-1] == later
        # A second erasure is recorded too, and takes the new key.
        again = ledger.execute(
            EraseDataSubject(
                command_id=f"again-{uuid.uuid4()}",
                actor={"kind": "user", "id": "carol", "role": "admin"},
                subject="customer.example",
            )
        )
        assert len(again.result["keys"]) == 1
        assert ledger.deal_notes(story.deal_id)[-1] == ERASED
        with pytest.raises(Forbidden):
            ledger.execute(
                EraseDataSubject(
                    command_id=f"partner-{uuid.uuid4()}",
                    actor={"kind": "partner", "id": "northwind", "role": "partner"},
                    subject="customer.example",
                )
            )
    finally:
        ledger.close()
    story.secrets.append(later)

    # Read models rebuilt from the store, a new bundle, the database byte-wise, and
    # what is published from now on: no trace.
    rebuilt = _cli(settings, "rebuild", "--from", "store")
    assert rebuilt.returncode == 0, rebuilt.stderr
    bundle = tmp_path / "bundle.zip"
    exported = _cli(settings, "export", str(story.deal_id), "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(bundle) as opened:
        bundled = b"".join(opened.read(name) for name in opened.namelist())
    stored = _database_bytes(settings)
    for key in keys:
        assert key not in stored, "a destroyed key is still in the database"
        assert key.hex().encode() not in stored.lower(), "a destroyed key is still in a row"
    after = _published(story)
    published_before = max(json.loads(v)["position"] for v in before)
    new = [v for v in after if json.loads(v)["position"] > published_before]
    assert new, "nothing was published after the erasure"
    for secret in story.secrets:
        assert not _found(secret, stored)
        assert not _found(secret, bundled)
        assert not _found(secret, b"\n".join(after))
    erased_messages = [
        json.loads(v) for v in new if b"customer.example" in v or ERASED.encode() in v
    ]
    assert any(ERASED in json.dumps(m["data"]) for m in erased_messages)
    assert any(
        json.loads(v)["event_type"].startswith("dealledger.data_subject.erased") for v in new
    )

    # The erasure changed no stored byte that a hash covers.
    verified = _cli(settings, "verify", "--all")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    checked = subprocess.run(
        [sys.executable, "-I", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
