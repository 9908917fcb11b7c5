"""The write side on the real PostgreSQL: exact round-trips, races, snapshots, upcasts."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from commands.ledger import DealLedger
from commands.models import AddDealNote, SubmitRegistration, WithdrawRegistration
from commands.outcome import Outcome
from domain.clock import ManualClock
from domain.errors import DomainError
from domain.ids import partner_id
from domain.partner import Partner
from domain.registration import RegistrationStatus, ReviewReason
from domain.values import Money
from infra.store.recorders import HashChainingPostgresRecorder
from tests.integration.conftest import LedgerFactory
from tests.property.invariants import streams_are_append_only
from tests.support import driver
from tests.support.actors import SALES, partner
from tests.support.driver import Driver


def onboard(ledger: DealLedger, *codes: str) -> None:
    Driver(ledger, "onboard-" + "-".join(codes)).onboard(*codes)


def submission(
    command_id: str, partner_code: str, domain: str, amount: str = "1000"
) -> SubmitRegistration:
    """Umbrella Corp in pounds, by `partner_code` for itself, under `command_id`."""
    return driver.submission(
        partner_code, domain, command_id=command_id, name="Umbrella Corp", amount=amount,
        currency="GBP", expected_close=date(2027, 3, 31),
    )  # fmt: skip


def test_money_dates_and_times_round_trip_exactly_through_postgres(
    pg_ledger: LedgerFactory,
) -> None:
    writer = pg_ledger()
    onboard(writer, "northwind")
    outcome = writer.execute(submission("s-1", "northwind", "umbrella.co.uk", "123456.789000"))
    assert outcome.aggregate_id is not None

    reader = pg_ledger()  # a second application instance: nothing cached, all read back
    registration = reader.get_registration(outcome.aggregate_id)
    assert registration.estimated_value == Money(Decimal("123456.789000"), "GBP")
    assert str(registration.estimated_value.amount) == "123456.789000"
    assert registration.expected_close == date(2027, 3, 31)
    assert type(registration.expected_close) is date
    assert registration.created_on == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert registration.created_on.utcoffset() == timedelta(0)
    assert registration.status is RegistrationStatus.APPROVED
    assert registration.submitted_by == partner("northwind")


def test_every_stored_event_records_actor_command_and_correlation(pg_ledger: LedgerFactory) -> None:
    ledger = pg_ledger()
    onboard(ledger, "northwind")
    command = submission("s-2", "northwind", "umbrella.com").model_copy(
        update={"correlation_id": "portal-flow-9"}
    )
    ledger.execute(command)
    notifications = ledger.recorder.select_notifications(start=1, limit=1000)
    submitted: list[Any] = [ledger.mapper.to_domain_event(n) for n in notifications]
    assert submitted
    for event in submitted:
        assert event.cause.command_id in ("onboard-northwind-1", "s-2")
        if event.cause.command_id == "s-2":
            assert event.cause.actor == partner("northwind")
            assert event.cause.correlation_id == "portal-flow-9"


# Each thread gets its own application (own connection pool), as separate processes
# would; or all share one, as an API process's workers do, so that their saves go
# through group commit together.
SHARING = pytest.mark.parametrize("shared", [False, True], ids=["processes", "group-commit"])


def recorder_of(ledger: DealLedger) -> HashChainingPostgresRecorder:
    assert isinstance(ledger.recorder, HashChainingPostgresRecorder)
    return ledger.recorder


def ledgers_for(pg_ledger: LedgerFactory, count: int, shared: bool) -> list[DealLedger]:
    if shared:
        return [pg_ledger()] * count
    return [pg_ledger() for _ in range(count)]


@SHARING
def test_racing_submissions_for_one_key_approve_exactly_one(
    pg_ledger: LedgerFactory, shared: bool
) -> None:
    """docs/architecture.md, invariants I1 and I2, under real concurrency."""
    partners = [f"partner-{i}" for i in range(8)]
    onboard(pg_ledger(), *partners)
    spellings = ["umbrella.com", "WWW.UMBRELLA.COM", "https://www.umbrella.com/", "Umbrella.com."]
    ledgers = ledgers_for(pg_ledger, len(partners), shared)
    barrier = threading.Barrier(len(partners), timeout=60)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def race(i: int) -> None:
        ledger = ledgers[i]
        command = submission(f"race-{i}", partners[i], spellings[i % len(spellings)])
        barrier.wait()
        try:
            outcomes.append(ledger.execute(command))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(partners))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not [e for e in errors if not isinstance(e, DomainError)], errors
    assert len(outcomes) == len(partners)
    statuses = Counter(o.result["status"] for o in outcomes)
    assert statuses["approved"] == 1, statuses
    assert statuses["in_review"] == len(partners) - 1, statuses
    reader = pg_ledger()
    losers = [o for o in outcomes if o.result["status"] == "in_review"]
    for outcome in losers:
        assert outcome.aggregate_id is not None
        registration = reader.get_registration(outcome.aggregate_id)
        # Each loser saw the winner (or another pending claim) when it retried.
        assert set(registration.review_reasons) & {
            ReviewReason.KEY_PROTECTED.value,
            ReviewReason.KEY_CONTESTED.value,
        }


def test_a_cached_aggregate_never_decides_against_what_another_process_stored(
    pg_ledger: LedgerFactory,
) -> None:
    """docs/architecture.md, invariant I1, with aggregate caches: `first` caches the
    key's protection while the key is free; `second` (another process, its own cache)
    then takes the key. `first` must see that claim, not its cached free key."""
    first, second = pg_ledger(), pg_ledger()
    assert first.repository.cache is not None  # the default keeps aggregates cached
    onboard(first, "northwind", "contoso")
    released = first.execute(submission("c-1", "northwind", "umbrella.com"))
    assert released.result["status"] == "approved"
    assert released.aggregate_id is not None
    Driver(first, "c-2").run(
        WithdrawRegistration, partner("northwind"), registration_id=released.aggregate_id
    )  # the key is free again, as `first` has it cached
    taken = second.execute(submission("c-3", "contoso", "umbrella.com"))
    assert taken.result["status"] == "approved"

    again = first.execute(submission("c-4", "northwind", "umbrella.com"))

    assert again.result["status"] == "in_review"
    assert again.aggregate_id is not None
    registration = second.get_registration(again.aggregate_id)
    assert ReviewReason.KEY_PROTECTED.value in registration.review_reasons


@SHARING
def test_one_command_id_sent_concurrently_is_applied_once(
    pg_ledger: LedgerFactory, shared: bool
) -> None:
    onboard(pg_ledger(), "northwind")
    ledgers = ledgers_for(pg_ledger, 4, shared)
    barrier = threading.Barrier(4, timeout=60)
    outcomes: list[Outcome] = []

    def send(ledger: Any) -> None:
        barrier.wait()
        outcomes.append(ledger.execute(submission("same-id", "northwind", "initech.com")))

    threads = [threading.Thread(target=send, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len({o.aggregate_id for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    reader = pg_ledger()
    rows = reader.recorder.select_notifications(start=1, limit=1000)
    submitted = [n for n in rows if n.topic.endswith("Registration.Submitted")]
    assert len(submitted) == 1


def test_concurrent_commands_share_commits_and_each_stays_atomic(
    pg_ledger: LedgerFactory,
) -> None:
    """Group commit: 16 workers of one process submit at once; their saves share
    statements, every command is stored whole and exactly once (one registration, its
    record, a protection, two indexes), conflicts are decided per key (I1), and every
    chain still verifies (I5)."""
    ledger = pg_ledger()
    partners = [f"partner-{i}" for i in range(16)]
    onboard(ledger, *partners)
    before = recorder_of(ledger).group_commit.appends, recorder_of(ledger).group_commit.writes
    barrier = threading.Barrier(len(partners), timeout=60)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        for n in range(10):
            # Every fourth submission goes for a key another worker also wants.
            domain = f"shared-{n}.example" if n % 4 == 0 else f"w{i}-{n}.example"
            command = driver.submission(
                partners[i], domain, command_id=f"g-{i}-{n}", name=domain.split(".")[0],
                expected_close=date(2027, 3, 31),
            )  # fmt: skip
            try:
                outcomes.append(ledger.execute(command))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(partners))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)

    assert not errors, errors
    assert len(outcomes) == 160
    appends = recorder_of(ledger).group_commit.appends - before[0]
    writes = recorder_of(ledger).group_commit.writes - before[1]
    assert appends >= 160, appends
    assert writes < appends, (appends, writes)
    reader = pg_ledger()
    rows = reader.recorder.select_notifications(start=1, limit=100000)
    submitted = Counter(
        str(n.originator_id) for n in rows if n.topic.endswith("Registration.Submitted")
    )
    assert sorted(submitted) == sorted(str(o.aggregate_id) for o in outcomes)
    assert set(submitted.values()) == {1}
    for n in range(0, 10, 4):
        claims = [o for o in outcomes if o.result["conflict_key"].startswith(f"shared-{n}.")]
        assert Counter(o.result["status"] for o in claims)["approved"] == 1, claims
    streams_are_append_only(reader, {UUID(str(n.originator_id)) for n in rows})


def test_reads_and_commands_on_one_deal_from_many_threads_see_whole_versions(
    pg_ledger: LedgerFactory,
) -> None:
    """The aggregate cache under the API's load: workers read a deal (as the deal view
    does) while others move and note it. No read or command ever meets a half
    brought-forward copy, and the deal ends with every command applied (I4)."""
    ledger = pg_ledger()
    onboard(ledger, "northwind")
    registration = ledger.execute(submission("r-hot", "northwind", "hot.example"))
    assert registration.aggregate_id is not None
    deal_id = Driver(ledger, "hot").convert(registration.aggregate_id, title="Hot")
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                deal = ledger.get_deal(deal_id)
                assert deal.note_count <= deal.version
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
                return

    def writer(n: int) -> None:
        drive = Driver(ledger, f"w{n}")
        for i in range(25):
            try:
                drive.run(AddDealNote, SALES, deal_id=deal_id, text=f"{n}-{i}")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
                return

    readers = [threading.Thread(target=reader) for _ in range(4)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(120)
    stop.set()
    for thread in readers:
        thread.join(30)

    assert not errors, errors[:3]
    deal = pg_ledger().get_deal(deal_id)
    assert deal.note_count == 100
    assert vars(deal) == vars(ledger.replay(deal_id))


def test_one_statement_commits_each_group_or_rolls_back_only_the_group_that_lost(
    pg_ledger: LedgerFactory,
) -> None:
    """The append function itself: of three groups written together, the one whose
    version is taken is rolled back alone (its other events too); the others commit,
    with contiguous positions and chains that verify (I5)."""
    ledger = pg_ledger()
    onboard(ledger, "northwind")
    stored = list(ledger.recorder.select_events(partner_id("northwind")))
    taken = stored[-1]
    first, second = uuid4(), uuid4()
    fresh = [StoredEvent(first, 1, taken.topic, taken.state)]
    loser = [
        StoredEvent(second, 1, taken.topic, taken.state),  # fine on its own
        StoredEvent(taken.originator_id, taken.originator_version, taken.topic, taken.state),
    ]
    also = [StoredEvent(first, 2, taken.topic, taken.state)]

    results = recorder_of(ledger)._write_groups([fresh, loser, also])

    assert results[1] is None
    assert results[0] is not None
    assert results[2] is not None
    assert results[2][0] > results[0][0]
    assert [e.originator_version for e in ledger.recorder.select_events(first)] == [1, 2]
    assert list(ledger.recorder.select_events(second)) == []
    streams_are_append_only(ledger, [first, partner_id("northwind")])


def test_snapshots_keep_long_deal_streams_loadable_and_equal_to_full_replay(
    pg_ledger: LedgerFactory, database_url: str, pg_schema: str
) -> None:
    """docs/architecture.md, invariant I4."""
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = pg_ledger(clock=clock, snapshot_interval=50)
    onboard(ledger, "northwind")
    registration = ledger.execute(submission("s-long", "northwind", "hooli.com"))
    assert registration.aggregate_id is not None
    drive = Driver(ledger)
    deal_id = drive.convert(registration.aggregate_id, title="Hooli analytics")
    for i in range(240):
        clock.advance(timedelta(minutes=1))
        drive.run(AddDealNote, SALES, deal_id=deal_id, text=f"call {i}")
    with psycopg.connect(database_url) as conn:
        snapshots = conn.execute(
            f"SELECT originator_version FROM {pg_schema}.dealledger_snapshots "
            "WHERE originator_id = %s ORDER BY originator_version",
            (deal_id,),
        ).fetchall()
    assert [v for (v,) in snapshots] == [50, 100, 150, 200]

    loaded = pg_ledger().get_deal(deal_id)
    replayed = ledger.replay(deal_id)
    assert loaded.version == 241
    assert vars(loaded) == vars(replayed)
    assert loaded.note_count == 240
    notes = ledger.deal_notes(deal_id)
    assert notes == [f"call {i}" for i in range(240)]
    # The snapshot no longer grows with the notes: the last is as small as the first.
    with psycopg.connect(database_url) as conn:
        sizes = conn.execute(
            f"SELECT length(state) FROM {pg_schema}.dealledger_snapshots "
            "WHERE originator_id = %s ORDER BY originator_version",
            (deal_id,),
        ).fetchall()
    assert sizes[-1][0] <= sizes[0][0] + 16, sizes


def test_a_stored_v1_partner_event_is_upcast_when_read(
    pg_ledger: LedgerFactory, database_url: str, pg_schema: str
) -> None:
    ledger = pg_ledger()
    onboard(ledger, "legacy")  # creates the tables through the library
    # Write an Onboarded event as version 1 of the schema stored it: no regions and
    # no class_version, straight into the events table.
    v1_state = (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-06-01T10:00:00+00:00"},'
        b'"originator_topic":"domain.partner:Partner",'
        b'"cause":{"_type_":"cause","_data_":{"actor":{"kind":"user","id":"ops","role":"admin"},'
        b'"command_id":"import-1","correlation_id":"import-1"}},'
        b'"code":"old-timer","name":"Old Timer Ltd",'
        b'"tier":{"_type_":"enum:PartnerTier","_data_":"silver"}}'
    )
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"INSERT INTO {pg_schema}.dealledger_events "
            "(originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)",
            (partner_id("old-timer"), "domain.partner:Partner.Onboarded", v1_state),
        )
    partner = pg_ledger().get_partner("old-timer")
    assert isinstance(partner, Partner)
    assert partner.name == "Old Timer Ltd"
    assert partner.regions == []
    assert partner.created_on == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def test_unknown_aggregates_are_refused_with_not_found(pg_ledger: LedgerFactory) -> None:
    from uuid import uuid4

    from domain.errors import NotFound

    with pytest.raises(NotFound, match="no deal"):
        Driver(pg_ledger()).run(AddDealNote, SALES, deal_id=uuid4(), text="hi")


def test_ledgers_starting_together_on_a_fresh_schema_all_come_up(
    database_url: str, pg_schema: str
) -> None:
    from infra.bootstrap import build_ledger
    from infra.settings import Settings

    settings = Settings(database_url=database_url, database_schema=pg_schema)
    barrier = threading.Barrier(6, timeout=60)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            build_ledger(settings).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
