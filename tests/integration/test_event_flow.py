"""Commands -> relay -> Kafka -> projectors, against the real broker and database."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from consumers.projector_host import ProjectorHost
from consumers.rebuild import rebuild_from_kafka, rebuild_from_store
from domain.clock import ManualClock
from infra.bootstrap import build_ledger
from infra.kafka.admin import ensure_topics
from infra.kafka.relay import Relay
from infra.logging import get_logger
from infra.settings import Settings
from projections.attribution import partner_attribution
from projections.read_models import dump_tables
from projections.store import ReadStore
from tests.integration.flow import (
    ROOT,
    drop_schema,
    isolated_settings,
    projector_caught_up,
    settings_env,
    start_cli,
    wait_until,
)
from tests.integration.workload import Workload

LOG = get_logger("test")


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = isolated_settings(database_url, kafka_bootstrap)
    yield settings
    drop_schema(settings)


def read_models(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        return dump_tables(ReadStore(conn, "postgres"))


def run_in_thread(target: Any) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def test_read_models_built_live_equal_a_rebuild_after_thousands_of_commands(
    settings: Settings,
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    relay = Relay(build_ledger(settings), settings, get_logger("relay"), batch_size=300)
    host = ProjectorHost(settings, get_logger("projector"))
    relay_thread, relay_stop = run_in_thread(relay.run)
    host_thread, host_stop = run_in_thread(host.run)
    try:
        workload = Workload(ledger, clock, seed=20261128)
        workload.onboard()
        while workload.sent < 3000:
            workload.step()
        assert workload.accepted > 1000, (workload.accepted, workload.refused)

        status_relay = Relay(build_ledger(settings), settings, LOG)
        wait_until(
            "relay and projector to catch up",
            lambda: projector_caught_up(settings, status_relay),
            240,
        )
        status_relay.close()
    finally:
        relay_stop.set()
        host_stop.set()
        relay_thread.join(30)
        host_thread.join(30)
    live = read_models(settings)
    assert len(live["rm_pipeline_deal"]) == len(workload.deals) > 100
    assert host.dead_lettered == 0

    rebuilt_count = rebuild_from_kafka(
        settings, ("pipeline", "attribution", "registration_queue"), LOG
    )
    assert rebuilt_count == ledger.recorder.max_notification_id()
    assert read_models(settings) == live

    rebuild_from_store(settings, ledger, ("pipeline", "attribution", "registration_queue"), LOG)
    assert read_models(settings) == live


def test_every_stored_event_reaches_kafka_in_per_aggregate_order(settings: Settings) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    workload = Workload(ledger, clock, seed=7)
    workload.onboard()
    while workload.sent < 400:
        workload.step()
    relay = Relay(ledger, settings, LOG, batch_size=128)
    ensure_topics(settings, LOG)
    status = relay.drain()
    assert status.lag == 0
    relay.drain()  # nothing left: publishing twice must not duplicate
    relay.close()

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    tps = [TopicPartition(settings.events_topic, p) for p in range(settings.topic_partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    versions: dict[str, list[int]] = {}
    positions: list[int] = []
    deadline = time.monotonic() + 60
    while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                headers = dict(record.headers)
                assert headers["ce_subject"] == record.key
                versions.setdefault(record.key.decode(), []).append(
                    int(headers["ce_aggregateversion"])
                )
                positions.append(int(headers["ce_ledgerposition"]))
    consumer.close()
    head = ledger.recorder.max_notification_id()
    assert sorted(positions) == list(range(1, (head or 0) + 1))  # every event, once
    for aggregate, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), aggregate


def test_a_poison_message_is_dead_lettered_and_the_projector_keeps_going(
    settings: Settings,
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    settings = settings.model_copy(update={"topic_partitions": 1})
    ensure_topics(settings, LOG)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    producer.send(settings.events_topic, key=b"not-json", value=b"\x00\xffgarbage").get(30)
    producer.send(
        settings.events_topic, key=b"bad-schema", value=b'{"event_type": "dealledger.deal.won.v1"}'
    ).get(30)
    producer.close()
    workload = Workload(ledger, clock, seed=3)
    workload.onboard()
    relay = Relay(ledger, settings, LOG)
    relay.drain()
    relay.close()

    host = ProjectorHost(settings, LOG)
    deadline = time.monotonic() + 60
    while sum(host.lag().values()) and time.monotonic() < deadline:
        host.poll_once()
    host.close()
    assert host.dead_lettered == 2
    assert host.applied == len(workload.partners)  # onboarded (no read model folds the records)
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        attribution = partner_attribution(ReadStore(conn, "postgres"))
    assert {p.partner_code for p in attribution} == set(workload.partners)

    consumer = KafkaConsumer(
        settings.events_dlq_topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
    )
    dead = list(consumer)
    consumer.close()
    assert [m.key for m in dead] == [b"not-json", b"bad-schema"]
    for message in dead:
        headers = dict(message.headers)
        assert headers["dlq_source_topic"].decode() == settings.events_topic
        assert headers["dlq_error"]
    assert b"not JSON" in dict(dead[0].headers)["dlq_error"]


def test_the_projector_group_setting_names_the_group_of_project_status_and_rebuild(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    group = f"blue-projectors-{uuid.uuid4().hex[:8]}"
    settings = isolated_settings(
        database_url, kafka_bootstrap, topic_partitions=2, projector_group=group
    )
    try:
        clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        ledger = build_ledger(settings, clock=clock)
        workload = Workload(ledger, clock, seed=8)
        workload.onboard()
        ensure_topics(settings, LOG)
        relay = Relay(ledger, settings, LOG)
        relay.drain()
        relay.close()
        env = {**settings_env(settings), "DEALLEDGER_PROJECTOR_GROUP": group}
        consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
        tps = [TopicPartition(settings.events_topic, p) for p in range(2)]
        ends = {tp.partition: int(offset) for tp, offset in consumer.end_offsets(tps).items()}
        consumer.close()

        def offsets_of(group_id: str) -> dict[int, int]:
            with psycopg.connect(settings.psycopg_conninfo()) as conn:
                rows = conn.execute(
                    "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = %s",
                    (group_id,),
                ).fetchall()
            return {int(p): int(o) for p, o in rows}

        log = tmp_path / "project.log"
        projector = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "project"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until("the projector to store its offsets", lambda: offsets_of(group) == ends, 60)
        finally:
            projector.terminate()
            projector.wait(20)
        status = subprocess.run(
            [sys.executable, "-m", "infra.cli", "project", "--status"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "total lag 0" in status.stdout, status.stdout + status.stderr
        subprocess.run(
            [sys.executable, "-m", "infra.cli", "rebuild", "--from", "kafka"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=True,
        )
        assert offsets_of(group) == ends
        assert offsets_of("dealledger-projectors") == {}
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:  # Kafka knows the group by that name too (its offsets are for monitoring)
            committed = admin.list_group_offsets(group)[group]
        finally:
            admin.close()
        assert {tp.partition for tp in committed} == {0, 1}
    finally:
        drop_schema(settings)


def test_relay_and_projector_killed_at_random_points_lose_and_double_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    import random
    import signal

    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    workload = Workload(ledger, clock, seed=99)
    workload.onboard()
    log = tmp_path / "processes.log"
    relay = start_cli(settings, "relay", "--batch-size", "50", log=log)
    projector = start_cli(settings, "project", log=log)
    rng = random.Random(5)
    kills = 0
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and workload.sent < 3000:
            for _ in range(rng.randint(20, 120)):
                workload.step()
            victim = rng.choice(("relay", "projector"))
            process = relay if victim == "relay" else projector
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
            if victim == "relay":
                relay = start_cli(settings, "relay", "--batch-size", "50", log=log)
            else:
                projector = start_cli(settings, "project", log=log)
        status_relay = Relay(build_ledger(settings), settings, LOG)
        wait_until("recovery after kills", lambda: projector_caught_up(settings, status_relay), 240)
        status_relay.close()
    finally:
        for process in (relay, projector):
            process.terminate()
            try:
                process.wait(20)
            except Exception:
                process.kill()
    assert kills >= 5
    live = read_models(settings)
    rebuild_from_store(settings, ledger, ("pipeline", "attribution", "registration_queue"), LOG)
    assert read_models(settings) == live, log.read_text()[-3000:]
