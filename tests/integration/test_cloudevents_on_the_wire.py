"""What analytics consumers see: valid CloudEvents, read by tools that are not ours."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.v1.kafka import KafkaMessage, from_binary
from jsonschema import Draft202012Validator
from kafka import KafkaConsumer, TopicPartition

from domain.clock import ManualClock
from infra.bootstrap import build_ledger
from infra.kafka.admin import ensure_topics
from infra.kafka.relay import Relay
from infra.logging import get_logger
from infra.settings import Settings
from projections.contract.schemas import event_classes, event_schema
from tests.integration.flow import ROOT, drop_schema, isolated_settings
from tests.integration.workload import Workload

LOG = get_logger("test")
KAFKA_LIBS = Path(ROOT) / ".cache" / "kafka" / "libs"


@pytest.fixture(scope="module")
def published(database_url: str, kafka_bootstrap: str) -> Iterator[tuple[Settings, int]]:
    settings = isolated_settings(database_url, kafka_bootstrap, topic_partitions=1)
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    workload = Workload(ledger, clock, seed=11)
    workload.onboard()
    while workload.sent < 300:
        workload.step()
    ensure_topics(settings, LOG)
    relay = Relay(ledger, settings, LOG)
    relay.drain()
    relay.close()
    yield settings, ledger.recorder.max_notification_id() or 0
    drop_schema(settings)


def test_kafkas_own_console_consumer_shows_cloudevent_headers_key_and_json(
    published: tuple[Settings, int],
) -> None:
    settings, _ = published
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{KAFKA_LIBS}/*",
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server",
            settings.bootstrap_servers[0],
            "--topic",
            settings.events_topic,
            "--from-beginning",
            "--max-messages",
            "20",
            "--timeout-ms",
            "30000",
            "--property",
            "print.headers=true",
            "--property",
            "print.key=true",
            "--property",
            "headers.separator=|",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 20
    for line in lines:
        header_text, key, value = line.split("\t", 2)
        headers = dict(h.split(":", 1) for h in header_text.split("|"))
        assert headers["ce_specversion"] == "1.0"
        assert headers["content-type"] == "application/json"
        assert headers["ce_subject"] == key
        body = json.loads(value)
        assert body["aggregate_id"] == key
        assert body["event_id"] == headers["ce_id"]
        assert body["event_type"] == headers["ce_type"]
        assert str(body["position"]) == headers["ce_ledgerposition"]


def test_a_generic_cloudevents_client_reads_every_message_as_a_valid_event(
    published: tuple[Settings, int],
) -> None:
    settings, head = published
    validators = {
        schema["properties"]["event_type"]["const"]: Draft202012Validator(schema)
        for schema in (event_schema(cls) for cls in event_classes())
    }
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    tp = TopicPartition(settings.events_topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records: list[Any] = []
    while len(records) < head:
        batch = consumer.poll(timeout_ms=2000)
        if not batch:
            break
        for rs in batch.values():
            records.extend(rs)
    consumer.close()
    assert len(records) == head
    ids = set()
    for record in records:
        event = from_binary(
            KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
        )
        assert event["specversion"] == "1.0"
        assert event["source"] == "/dealledger/ledger"
        assert event["subject"] == record.key.decode()
        assert event["datacontenttype"] == "application/json"
        assert datetime.fromisoformat(event["time"]).utcoffset() is not None
        assert event["type"].startswith("dealledger.")
        data = event.get_data()
        assert isinstance(data, dict)
        errors = list(validators[event["type"]].iter_errors(data))
        assert not errors, (event["type"], [e.message for e in errors])
        ids.add(event["id"])
    assert len(ids) == head  # ce_id is unique per event
