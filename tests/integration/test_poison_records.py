"""Records the projector cannot apply, through the real broker and `dealledger project`.

Each poison record goes to the events topic ahead of good events on the same (single)
partition. Whatever is wrong with it, the projector must dead-letter it, stay up, and
move the partition past it: the stored offset passes it and the good events after it
are applied. Rebuild must skip (and count) the same records rather than die on them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from commands.models import OnboardPartner
from consumers.rebuild import rebuild_from_kafka
from domain.clock import ManualClock
from infra.bootstrap import build_ledger
from infra.kafka.admin import ensure_topics
from infra.kafka.relay import Relay
from infra.logging import get_logger
from infra.settings import Settings
from projections.attribution import partner_attribution
from projections.contract.encoding import notification_to_message
from projections.read_models import PROJECTION_NAMES, PROJECTIONS
from projections.store import ReadStore
from tests.integration.flow import drop_schema, isolated_settings, start_cli
from tests.support.actors import MANAGER
from tests.support.driver import Driver, in_memory_ledger

LOG = get_logger("test")
Headers = list[tuple[str, bytes]]
Poison = tuple[bytes | None, bytes, Headers]


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = isolated_settings(database_url, kafka_bootstrap, topic_partitions=1)
    ensure_topics(settings, LOG)
    yield settings
    drop_schema(settings)


# -- the poison ------------------------------------------------------------------------


@cache
def samples() -> dict[str, dict[str, Any]]:
    """Complete, valid published messages by event name, from a real in-memory ledger."""
    ledger = in_memory_ledger(ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)))
    drive = Driver(ledger, "sample")
    drive.onboard("acme")
    drive.submit("acme", "initech.com", name="Initech", product="Cloud", country="US")
    drive.open_deal(
        "globex.de", product="Cloud", amount="5000", currency="EUR", title="Direct deal"
    )
    found: dict[str, dict[str, Any]] = {}
    for notification in ledger.recorder.select_notifications(start=1, limit=100):
        message = notification_to_message(ledger.mapper, notification)
        found.setdefault(message.name, message.to_json())
    return found


def poison(
    name: str,
    change: Callable[[dict[str, Any]], None],
    *,
    encoding: str = "utf-8",
    ce_type: str | None = "body",
) -> Poison:
    """A sample `name` message on a made-up aggregate, changed by `change`."""
    body = json.loads(json.dumps(samples()[name]))
    aggregate_id = str(uuid.uuid4())
    body["aggregate_id"] = aggregate_id
    body["event_id"] = str(uuid.uuid4())
    change(body)
    headers: Headers = [("content-type", b"application/json")]
    if ce_type is not None:
        headers.append(
            ("ce_type", str(body["event_type"] if ce_type == "body" else ce_type).encode())
        )
    value = json.dumps(body, ensure_ascii=False).encode(encoding)
    return aggregate_id.encode(), value, headers


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.__setitem__(key, value)


def _deeply_nested() -> Poison:
    depth = 100_000
    value = b'{"event_type":"dealledger.deal.opened.v1","data":' + b"[" * depth + b"]" * depth
    return str(uuid.uuid4()).encode(), value + b"}", []


# Records that stopped `dealledger project` at every start (it exited 1).
FATAL: dict[str, Callable[[], Poison]] = {
    "aggregate_version 2**64": lambda: poison("deal.opened", _set("aggregate_version", 2**64)),
    "position 10**20": lambda: poison("deal.opened", _set("position", 10**20)),
    "nested 100,000 levels deep": _deeply_nested,
    "title with NUL": lambda: poison(
        "deal.opened", lambda b: b["data"].__setitem__("title", "Acme\u0000Deal")
    ),
}

# Records that were applied (bookkeeping rows on a made-up aggregate) instead of dead-lettered.
APPLIED: dict[str, Callable[[], Poison]] = {
    "unknown type": lambda: poison(
        "deal.opened", _set("event_type", "dealledger.deal.exploded.v1")
    ),
    "type with five parts": lambda: poison(
        "deal.opened", _set("event_type", "dealledger.deal.opened.v1.extra")
    ),
    "registration.submitted without notes": lambda: poison(
        "registration.submitted", lambda b: b["data"].pop("notes")
    ),
    "deal.opened in UTF-16": lambda: poison("deal.opened", lambda b: None, encoding="utf-16"),
    "ce_type header disagrees with the body": lambda: poison(
        "deal.opened", lambda b: None, ce_type="dealledger.deal.won.v1"
    ),
}


# -- plumbing --------------------------------------------------------------------------


def produce(settings: Settings, key: bytes | None, value: bytes, headers: Headers) -> int:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        return int(
            producer.send(settings.events_topic, key=key, value=value, headers=headers)
            .get(30)
            .offset
        )
    finally:
        producer.close()


def publish_good_events(settings: Settings, tag: str) -> set[str]:
    """Onboards two partners and relays their events; returns the partner codes."""
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    codes = {f"{tag}-one", f"{tag}-two"}
    drive = Driver(ledger, f"good-{tag}")
    for code in sorted(codes):
        drive.run(OnboardPartner, MANAGER, partner_code=code, name=code)
    relay = Relay(ledger, settings, LOG)
    relay.drain()
    relay.close()
    ledger.close()
    return codes


def end_offset(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        tp = TopicPartition(settings.events_topic, 0)
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def stored_offset(settings: Settings) -> int:
    """How far the projector has stored its progress on the (only) partition."""
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        if conn.execute("SELECT to_regclass('consumer_offsets')").fetchone() == (None,):
            return 0
        row = conn.execute(
            "SELECT max(next_offset) FROM consumer_offsets WHERE topic = %s",
            (settings.events_topic,),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def applied_rows(settings: Settings, aggregate_id: bytes | None) -> list[tuple[Any, ...]]:
    """The bookkeeping every read model keeps for `aggregate_id` (none for a made-up id)."""
    found: list[tuple[Any, ...]] = []
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        for projection in PROJECTIONS:
            found += conn.execute(
                f"SELECT %s, version FROM {projection.applied_table.name} WHERE aggregate_id = %s",
                (projection.name, (aggregate_id or b"").decode("utf-8", "replace")),
            ).fetchall()
    return found


def partners_in_read_model(settings: Settings) -> set[str]:
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        return {p.partner_code for p in partner_attribution(ReadStore(conn, "postgres"))}


def read_topic(settings: Settings, topic: str, expected: int) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    found: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(found) < expected and time.monotonic() < deadline:
            found.extend(consumer)
    finally:
        consumer.close()
    return found


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def wait_past(
    settings: Settings, projector: subprocess.Popen[bytes], end: int, log: Path, timeout: float
) -> None:
    """Until the projector has stored an offset at or past `end`; fails at once if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        code = projector.poll()
        if code is not None:
            raise AssertionError(f"`dealledger project` exited with {code}:\n{tail(log)}")
        reached = stored_offset(settings)
        if reached >= end:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the partition is stuck at offset {reached} (end {end}) after {timeout}s:\n"
                f"{tail(log)}"
            )
        time.sleep(0.25)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def run_projector_past(
    settings: Settings, record: Poison, tmp_path: Path, timeout: float = 60
) -> tuple[int, set[str], Path]:
    """Produce `record`, then good events, then run `dealledger project` until it has
    stored an offset past all of them; checks it is still up and applied the good ones."""
    key, value, headers = record
    offset = produce(settings, key, value, headers)
    partners = publish_good_events(settings, uuid.uuid4().hex[:6])
    end = end_offset(settings)
    assert end > offset + 1
    log = tmp_path / "project.log"
    projector = start_cli(settings, "project", log=log)
    try:
        wait_past(settings, projector, end, log, timeout)
        assert partners <= partners_in_read_model(settings)
        time.sleep(1)
        assert projector.poll() is None, tail(log)
    finally:
        stop(projector)
    return offset, partners, log


def dlq_headers(message: Any) -> dict[str, bytes]:
    return {name: value for name, value in message.headers}


# -- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(FATAL))
def test_a_record_that_stopped_the_projector_is_dead_lettered_and_passed(
    settings: Settings, tmp_path: Path, case: str
) -> None:
    record = FATAL[case]()
    offset, _, _ = run_projector_past(settings, record, tmp_path)

    assert applied_rows(settings, record[0]) == []
    (dead,) = read_topic(settings, settings.events_dlq_topic, 1)
    headers = dlq_headers(dead)
    assert dead.value == record[1]
    assert headers["dlq_source_topic"].decode() == settings.events_topic
    assert int(headers["dlq_source_offset"]) == offset
    assert headers["dlq_error"]
    if case == "title with NUL":  # a database error, not caught by parsing
        assert b"NUL" in headers["dlq_error"], headers["dlq_error"]


@pytest.mark.parametrize("case", list(APPLIED))
def test_a_record_off_the_published_schema_is_dead_lettered_not_applied(
    settings: Settings, tmp_path: Path, case: str
) -> None:
    record = APPLIED[case]()
    offset, _, _ = run_projector_past(settings, record, tmp_path)

    assert applied_rows(settings, record[0]) == []
    dead = read_topic(settings, settings.events_dlq_topic, 1)
    assert [int(dlq_headers(m)["dlq_source_offset"]) for m in dead] == [offset]
    assert dead[0].value == record[1]


def test_a_record_the_database_refuses_is_dead_lettered_once_and_its_batch_applied(
    settings: Settings, tmp_path: Path
) -> None:
    # On the contract, but a key too large for the read model's btree index (SQLSTATE
    # 54000): only the database finds out, when the batch it arrives in is written.
    # Ahead of it in the same batch, a record already dead-lettered by parsing: it
    # must not be dead-lettered again when the batch is applied a second time.
    unparsable = produce(settings, *APPLIED["unknown type"]())
    huge = secrets.token_hex(20_000)
    record = poison(
        "channel_protection.opened", lambda b: b["data"].__setitem__("conflict_key", huge)
    )
    offset, _, _ = run_projector_past(settings, record, tmp_path)

    assert applied_rows(settings, record[0]) == []
    dead = read_topic(settings, settings.events_dlq_topic, 2)
    assert [int(dlq_headers(m)["dlq_source_offset"]) for m in dead] == [unparsable, offset]
    assert b"index row" in dlq_headers(dead[1])["dlq_error"], dlq_headers(dead[1])["dlq_error"]


def test_a_record_too_large_to_copy_is_dead_lettered_by_reference(
    settings: Settings, tmp_path: Path
) -> None:
    body = b"\xff" * 1_048_450
    offset, _, log = run_projector_past(settings, (None, body, []), tmp_path)

    (dead,) = read_topic(settings, settings.events_dlq_topic, 1)
    headers = dlq_headers(dead)
    assert headers["dlq_by_reference"] == b"true"
    assert headers["dlq_source_topic"].decode() == settings.events_topic
    assert int(headers["dlq_source_partition"]) == 0
    assert int(headers["dlq_source_offset"]) == offset
    assert headers["dlq_value_sha256"].decode() == hashlib.sha256(body).hexdigest()
    assert int(headers["dlq_value_bytes"]) == len(body)
    assert 0 < len(dead.value) < 64 * 1024
    assert body.startswith(dead.value)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "message dead-lettered by reference" for e in events)
    assert not any("kafka unavailable" in str(e.get("event")) for e in events)


def test_rebuild_skips_and_counts_what_the_projector_dead_letters(settings: Settings) -> None:
    records = [make() for make in (*FATAL.values(), *APPLIED.values())]
    for key, value, headers in records:
        produce(settings, key, value, headers)
    partners = publish_good_events(settings, "rebuild")
    end = end_offset(settings)

    log = RecordingLog()
    done = rebuild_from_kafka(settings, PROJECTION_NAMES, log)

    assert done == end
    assert partners <= partners_in_read_model(settings)
    for key, _, _ in records:
        assert applied_rows(settings, key) == []
    (summary,) = [fields for event, fields in log.events if event == "rebuilt from kafka"]
    assert summary["skipped"] == len(records)


class RecordingLog:
    """A structlog-shaped logger that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _record(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    info = warning = debug = error = _record
