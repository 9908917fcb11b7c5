"""Auditors on the real PostgreSQL: history, state as of, tamper evidence, export."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from commands.ledger import DealLedger
from commands.models import (
    AddDealNote,
    AttachPartner,
    Command,
    MarkDealWon,
    MoveDealStage,
    OnboardPartner,
    SetAttribution,
    SuspendPartner,
)
from domain.clock import ManualClock
from domain.deal import Deal
from infra.audit import api
from infra.audit.export import export_deal
from infra.audit.history import readable_state
from infra.audit.store import PAGE, AuditStore
from infra.bootstrap import build_ledger
from infra.settings import Settings
from tests.integration.flow import drop_schema, isolated_settings, settings_env
from tests.support.actors import MANAGER, SALES, caused_by
from tests.support.driver import Driver


@dataclass
class Story:
    settings: Settings
    ledger: DealLedger
    clock: ManualClock
    registration_id: UUID
    deal_id: UUID
    moments: list[tuple[datetime, dict[str, Any]]]  # live deal state captured at each moment


@pytest.fixture
def story(database_url: str, kafka_bootstrap: str) -> Iterator[Story]:
    settings = isolated_settings(database_url, kafka_bootstrap)
    clock = ManualClock(datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    drive = Driver(ledger)
    drive.onboard("northwind", "contoso")
    clock.advance(timedelta(hours=1))
    registration_id = drive.registered(
        "northwind", "globex.com", name="Globex", product="cloud", amount="120000.00",
        expected_close=date(2026, 9, 30), country="US",
    )  # fmt: skip
    clock.advance(timedelta(days=1))
    deal_id = drive.convert(registration_id, title="Globex cloud")
    moments = []
    steps: list[tuple[type[Command], dict[str, Any]]] = [
        (AttachPartner, {"partner_code": "contoso", "role": "influencer"}),
        (SetAttribution, {"shares": {"northwind": Decimal(60), "contoso": Decimal(40)}}),
        (MoveDealStage, {"stage": "proposal"}),
        (AddDealNote, {"text": "pricing agreed"}),
        (MarkDealWon, {"command_id": "won-1"}),
    ]
    for command_type, fields in steps:
        clock.advance(timedelta(days=3))
        drive.run(command_type, SALES, deal_id=deal_id, **fields)
        live = {**readable_state(ledger.get_deal(deal_id)), "notes": ledger.deal_notes(deal_id)}
        moments.append((clock.now() + timedelta(hours=1), live))
    yield Story(settings, ledger, clock, registration_id, deal_id, moments)
    ledger.close()
    drop_schema(settings)


def test_history_entries_decoded_once_equal_the_domain_events_they_record(story: Story) -> None:
    """History decodes each row straight to the published document; what it reports is
    what the stored event, decoded the long way into its domain object, says."""
    from infra.audit.history import _entry
    from projections.contract.catalogue import event_type_of
    from projections.contract.encoding import Encoder, event_data

    store = AuditStore(story.ledger)
    encoder = Encoder(story.ledger.mapper, personal=True)  # as the history decodes
    rows = list(store.in_ledger_order())
    assert len(rows) >= 10
    for row in rows:
        event = store.decode(row)
        entry = _entry(encoder, row)
        assert (entry.aggregate_type, entry.event_type) == event_type_of(event)
        assert entry.occurred_at == event.timestamp
        assert entry.actor == str(event.cause.actor)
        assert (entry.command_id, entry.correlation_id) == (
            event.cause.command_id,
            event.cause.correlation_id,
        )
        assert entry.changes == event_data(event), row.topic


def test_history_runs_from_registration_through_conversion_to_the_closed_deal(story: Story) -> None:
    entries = list(api.history(story.ledger, story.deal_id))
    types = [e.event_type for e in entries]
    assert types[:4] == [
        "dealledger.registration.submitted.v1",
        "dealledger.registration.approved.v1",
        "dealledger.channel_protection.opened.v1",
        "dealledger.channel_protection.granted.v1",
    ]
    assert "dealledger.registration.converted.v1" in types
    assert types.index("dealledger.registration.converted.v1") < types.index(
        "dealledger.deal.opened.v1"
    )
    assert types[-2:] == ["dealledger.deal.won.v1", "dealledger.channel_protection.released.v1"]
    positions = [e.position for e in entries]
    assert positions == sorted(positions)
    won = entries[-2]
    assert (won.actor, won.command_id) == ("user:sam(sales)", "won-1")
    assert won.changes["attributed"] == {
        "northwind": {"amount": "72000.00", "currency": "USD"},
        "contoso": {"amount": "48000.00", "currency": "USD"},
    }
    # Paging: the same entries, in pages of two.
    paged: list[Any] = []
    after = 0
    while page := list(api.history(story.ledger, story.deal_id, after_position=after, limit=2)):
        paged.extend(page)
        after = page[-1].position
    assert [e.position for e in paged] == positions


def test_state_as_of_each_moment_equals_the_live_state_captured_then(story: Story) -> None:
    for moment, live in story.moments:
        as_of = api.state_as_of(story.ledger, story.deal_id, as_of=moment)
        assert as_of.deal == live
    by_version = api.state_as_of(story.ledger, story.deal_id, version=2)
    assert by_version.deal == story.moments[0][1]
    assert by_version.registration is not None
    assert by_version.registration["status"] == "converted"


def test_verify_passes_on_untouched_data(story: Story) -> None:
    """docs/architecture.md, invariant I5: every event chains to its predecessor."""
    report = api.verify(story.ledger, story.deal_id)
    assert report.ok, report.problems
    assert report.events >= 10
    assert api.verify(story.ledger).ok


def _tamper(story: Story, sql: str, *params: Any) -> None:
    table = f"{story.settings.database_schema}.dealledger_events"
    with psycopg.connect(story.settings.database_url or "") as conn:
        conn.execute(sql.format(table=table), params)


def _verify_cli(story: Story) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "verify", str(story.deal_id)],
        env=settings_env(story.settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_changed_payload_fails_verify_naming_the_event(story: Story) -> None:
    _tamper(
        story,
        "UPDATE {table} SET state = convert_to(replace(convert_from(state, 'UTF8'), "
        "'\"60\"', '\"90\"'), 'UTF8') WHERE originator_id = %s AND originator_version = 3",
        story.deal_id,
    )
    report = api.verify(story.ledger, story.deal_id)
    assert not report.ok
    first = report.problems[0]
    assert (first.stream, first.version, first.what) == (
        story.deal_id,
        3,
        "content or ledger position does not match its hash",
    )
    result = _verify_cli(story)
    assert result.returncode == 1
    assert f"BROKEN: stream {story.deal_id} version 3" in result.stdout


def test_a_deleted_event_fails_verify(story: Story) -> None:
    _tamper(
        story,
        "DELETE FROM {table} WHERE originator_id = %s AND originator_version = 4",
        story.deal_id,
    )
    report = api.verify(story.ledger, story.deal_id)
    assert not report.ok
    assert report.problems[0].version == 4
    assert _verify_cli(story).returncode == 1


def test_a_deleted_last_event_is_noticed_by_its_remaining_hash(story: Story) -> None:
    _tamper(
        story,
        "DELETE FROM {table} WHERE originator_id = %s AND originator_version = 6",
        story.deal_id,
    )
    report = api.verify(story.ledger, story.deal_id)
    assert [(p.version, p.what) for p in report.problems] == [(6, "was removed (its hash remains)")]


def test_swapped_events_fail_verify(story: Story) -> None:
    _tamper(
        story,
        "UPDATE {table} t SET state = s.state, topic = s.topic FROM {table} s "
        "WHERE t.originator_id = %s AND s.originator_id = t.originator_id "
        "AND t.originator_version IN (2, 3) AND s.originator_version = 5 - t.originator_version",
        story.deal_id,
    )
    report = api.verify(story.ledger, story.deal_id)
    assert not report.ok
    assert report.problems[0].version == 2


def test_an_event_moved_to_another_ledger_position_fails_verify(story: Story) -> None:
    _tamper(
        story,
        "UPDATE {table} SET notification_id = (SELECT max(notification_id) + 10 FROM {table}) "
        "WHERE originator_id = %s AND originator_version = 3",
        story.deal_id,
    )
    report = api.verify(story.ledger, story.deal_id)
    assert [(p.version, p.what) for p in report.problems][:1] == [
        (3, "content or ledger position does not match its hash")
    ]
    assert _verify_cli(story).returncode == 1


def _export_cli(story: Story, out: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "export", str(story.deal_id), "--out", str(out)],
        env=settings_env(story.settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"(check: python3 {out})" in result.stdout


def _run_bundle(bundle: Path) -> subprocess.CompletedProcess[str]:
    """`python3 BUNDLE.zip`: the bundle's own checker, standard library only."""
    return subprocess.run(
        [sys.executable, "-I", str(bundle)], capture_output=True, text=True, timeout=60, check=False
    )


def _forge(bundle: Path, out: Path, change: Any) -> Path:
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "events.jsonl":
                lines = [json.loads(line) for line in data.decode().splitlines()]
                change(lines)
                data = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()
            dst.writestr(item, data)
    return out


def test_forged_bundle_metadata_is_detected(story: Story, tmp_path: Path) -> None:
    bundle = tmp_path / "deal.zip"
    _export_cli(story, bundle)
    ok = _run_bundle(bundle)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    def by_type(lines: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
        return next(line for line in lines if line["event_type"].endswith(suffix))

    def intruder(lines: list[dict[str, Any]]) -> None:
        by_type(lines, ".deal.won.v1")["actor"] = "user:intruder(admin)"

    def relabel(lines: list[dict[str, Any]]) -> None:
        by_type(lines, ".deal.stage_changed.v1")["event_type"] = "dealledger.deal.won.v1"

    def swap(lines: list[dict[str, Any]]) -> None:
        a = by_type(lines, ".registration.submitted.v1")
        b = by_type(lines, ".deal.won.v1")
        a["position"], b["position"] = b["position"], a["position"]

    for n, change in enumerate((intruder, relabel, swap)):
        forged = _run_bundle(_forge(bundle, tmp_path / f"forged-{n}.zip", change))
        assert forged.returncode == 1, (change.__name__, forged.stdout, forged.stderr)
        assert forged.stdout.startswith("BROKEN")


def test_a_store_hashed_before_positions_were_still_verifies_and_seals_new_positions(
    story: Story,
) -> None:
    from infra.audit.bundle_check import GENESIS, chain_hash

    schema = story.settings.database_schema
    story.ledger.close()
    with psycopg.connect(story.settings.database_url or "", autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {schema}.dealledger_events_hashes DROP COLUMN scheme")
        # Nor had it a ledger tree: the next start seals it and builds one over these.
        conn.execute(f"ALTER TABLE {schema}.dealledger_events_hashes DROP COLUMN leaf")
        for suffix in ("tree", "seal", "checkpoints"):
            conn.execute(f"DROP TABLE {schema}.dealledger_events_{suffix}")
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state "
            f"FROM {schema}.dealledger_events ORDER BY originator_id, originator_version"
        ).fetchall()
        heads: dict[str, str] = {}
        for originator_id, version, topic, state in rows:
            stream = str(originator_id)
            prev = heads.get(stream, GENESIS)
            heads[stream] = chain_hash(prev, stream, version, topic, bytes(state))
            conn.execute(
                f"UPDATE {schema}.dealledger_events_hashes SET prev_hash = %s, hash = %s "
                "WHERE originator_id = %s AND originator_version = %s",
                (prev, heads[stream], originator_id, version),
            )
    story.ledger = build_ledger(story.settings, clock=story.clock)  # adds the scheme column
    report = api.verify(story.ledger)
    assert report.ok, report.problems
    assert report.unpositioned == report.events

    Driver(story.ledger, "later").run(
        SuspendPartner, MANAGER, partner_code="contoso", reason="audit"
    )
    assert api.verify(story.ledger).ok
    _tamper(
        story,
        "UPDATE {table} SET notification_id = notification_id + 100 "
        "WHERE notification_id = (SELECT max(notification_id) FROM {table})",
    )
    problems = api.verify(story.ledger).problems
    assert problems[0].what == "content or ledger position does not match its hash"
    # ... and its leaf in the ledger tree no longer matches it: the same event, named.
    assert len(problems) == 2
    assert (problems[1].stream, problems[1].version) == (problems[0].stream, problems[0].version)
    assert problems[1].what.startswith("differs from leaf")


def test_the_exported_bundle_verifies_offline_and_detects_tampering(
    story: Story, tmp_path: Path
) -> None:
    bundle = tmp_path / "deal.zip"
    manifest = export_deal(AuditStore(story.ledger), story.deal_id, bundle)
    with zipfile.ZipFile(bundle) as z:
        assert manifest["event_count"] == len(z.read("events.jsonl").splitlines())
    checker_dir = tmp_path / "offline"
    checker_dir.mkdir()
    with zipfile.ZipFile(bundle) as z:
        z.extract("bundle_check.py", checker_dir)
    # -I: isolated, no project on the path and no site-packages: the standard library only.
    check = [sys.executable, "-I", str(checker_dir / "bundle_check.py")]
    ok = subprocess.run(
        [*check, str(bundle)], capture_output=True, text=True, timeout=60, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "events.jsonl":
                lines = data.decode().splitlines()
                lines.pop(3)  # an event quietly dropped
                data = ("\n".join(lines) + "\n").encode()
            dst.writestr(item, data)
    broken = subprocess.run(
        [*check, str(tampered)], capture_output=True, text=True, timeout=60, check=False
    )
    assert broken.returncode == 1
    assert "BROKEN" in broken.stdout


def test_replaying_a_ten_thousand_event_deal_is_streamed_page_by_page(story: Story) -> None:
    deal = story.ledger.get_deal(story.deal_id)
    from domain.deal import DealStatus

    assert deal.status is DealStatus.WON
    cause = caused_by(SALES, "bulk-notes")
    for i in range(10_000):
        deal.add_note(f"note {i}", cause, story.clock.now() + timedelta(seconds=i))
    story.ledger.save(deal)

    store = AuditStore(story.ledger)
    largest_page = 0
    query = store._query

    def counting(sql: str, params: Any) -> list[tuple[Any, ...]]:
        nonlocal largest_page
        rows = query(sql, params)
        largest_page = max(largest_page, len(rows))
        return rows

    store._query = counting  # type: ignore[method-assign]
    from infra.audit.history import deal_as_of

    state = deal_as_of(store, story.deal_id)
    assert state.deal_version == deal.version
    assert state.deal["notes"][-1] == "note 9999"
    assert largest_page == PAGE  # never more than one page of rows in hand
    assert isinstance(story.ledger.get_deal(story.deal_id), Deal)


def test_history_stored_before_hash_chaining_is_verified_from_its_first_hashed_event(
    database_url: str, kafka_bootstrap: str
) -> None:
    settings = isolated_settings(database_url, kafka_bootstrap)
    try:
        clock = ManualClock(datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
        env = settings.eventsourcing_env()
        del env["APPLICATION_RECORDER_TOPIC"]  # the store as it was before this feature
        legacy = DealLedger(env=env, clock=clock)
        Driver(legacy, "legacy").run(OnboardPartner, MANAGER, partner_code="old", name="Old")
        legacy.close()

        ledger = build_ledger(settings, clock=clock)  # now with hash chaining
        Driver(ledger, "later").run(SuspendPartner, MANAGER, partner_code="old", reason="audit")
        report = api.verify(ledger)
        assert report.ok, report.problems
        assert report.unsealed == 2  # the onboarding event and its command record
        ledger.close()
    finally:
        drop_schema(settings)
