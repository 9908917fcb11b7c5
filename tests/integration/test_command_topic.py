"""The Kafka command topic: commands and their results round-trip through the broker."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from consumers.command_consumer import CommandConsumer
from infra.bootstrap import Wiring
from infra.kafka.admin import ensure_topics
from infra.logging import get_logger
from infra.settings import Settings
from tests.integration.flow import drop_schema, isolated_settings
from tests.support.actors import MANAGER, partner

LOG = get_logger("test")


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = isolated_settings(database_url, kafka_bootstrap, topic_partitions=1)
    yield settings
    drop_schema(settings)


def _read_all(settings: Settings, topic: str, expected: int) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
    )
    messages: list[Any] = []
    deadline = time.monotonic() + 30
    while len(messages) < expected and time.monotonic() < deadline:
        for message in consumer:
            messages.append(message)
            if len(messages) >= expected:
                break
    consumer.close()
    return messages


def test_commands_round_trip_and_a_malformed_one_lands_in_the_dlq(settings: Settings) -> None:
    wiring = Wiring(settings)
    ledger = wiring.ledger()
    auth = wiring.authenticator()
    manager_key = auth.keys.create(MANAGER)
    partner_key = auth.keys.create(partner("northwind"))
    ensure_topics(settings, LOG)

    submission: dict[str, Any] = {
        "type": "SubmitRegistration",
        "command_id": "portal-17",
        "api_key": partner_key,
        "correlation_id": "portal-session-4",
        "payload": {
            "partner_code": "northwind",
            "customer": {"name": "Globex", "domain": "www.globex.com", "country": "US"},
            "product_line": "cloud",
            "estimated_value": {"amount": "125000.00", "currency": "USD"},
            "expected_close": str(date(2030, 1, 1)),
        },
    }
    envelopes: list[bytes] = [
        json.dumps(
            {
                "type": "OnboardPartner",
                "command_id": "crm-1",
                "api_key": manager_key,
                "payload": {"partner_code": "northwind", "name": "Northwind", "tier": "gold"},
            }
        ).encode(),
        json.dumps(submission).encode(),
        json.dumps(submission).encode(),  # redelivered / re-sent: applied once
        b"\x00 not a command",
        json.dumps({**submission, "command_id": "portal-18", "api_key": "dl_nope_nope"}).encode(),
        json.dumps(
            {
                **submission,
                "command_id": "portal-19",
                "payload": {**submission["payload"], "product_line": ""},
            }
        ).encode(),
        json.dumps(
            {
                "type": "OnboardPartner",
                "command_id": "portal-20",
                "api_key": partner_key,
                "payload": {"partner_code": "evil", "name": "Evil"},
            }
        ).encode(),
    ]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for value in envelopes:
        producer.send(settings.commands_topic, value=value).get(30)
    producer.close()

    consumer = CommandConsumer(settings, wiring.gateway(), LOG)
    handled = 0
    deadline = time.monotonic() + 60
    while handled < len(envelopes) and time.monotonic() < deadline:
        handled += consumer.poll_once()
    consumer.close()
    assert handled == len(envelopes)

    results = {
        m.key.decode(): json.loads(m.value)
        for m in _read_all(settings, settings.command_results_topic, 6)
    }
    by_id: dict[str, list[dict[str, Any]]] = {}
    for message in _read_all(settings, settings.command_results_topic, len(envelopes) - 1):
        by_id.setdefault(message.key.decode(), []).append(json.loads(message.value))
    assert set(results) == {"crm-1", "portal-17", "portal-18", "portal-19", "portal-20"}
    first, again = by_id["portal-17"]
    assert first["status"] == again["status"] == "accepted"
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert first["aggregate_id"] == again["aggregate_id"]
    assert first["result"]["status"] == "approved"
    assert first["position"] >= 1
    assert results["portal-18"]["problem"]["code"] == "unauthenticated"
    assert results["portal-18"]["problem"]["status"] == 401
    assert results["portal-19"]["problem"]["status"] == 422
    assert results["portal-20"]["problem"]["code"] == "forbidden"

    registration = ledger.get_registration(
        first["aggregate_id"] and __import__("uuid").UUID(first["aggregate_id"])
    )
    assert registration.submitted_by == partner("northwind")
    submitted = [
        n
        for n in ledger.recorder.select_notifications(start=1, limit=1000)
        if n.topic.endswith("Registration.Submitted")
    ]
    assert len(submitted) == 1

    dead = _read_all(settings, settings.commands_dlq_topic, 1)
    assert [m.value for m in dead] == [b"\x00 not a command"]
    assert b"not JSON" in dict(dead[0].headers)["dlq_error"]


def test_a_command_too_large_to_copy_is_dead_lettered_by_reference(settings: Settings) -> None:
    ensure_topics(settings, LOG)
    body = b"\xff" * 1_048_450  # with the dlq_* headers, larger than a producer request
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    producer.send(settings.commands_topic, value=body).get(30)
    producer.send(settings.commands_topic, value=b"\x00 after the large one").get(30)
    producer.close()

    consumer = Wiring(settings).command_consumer()
    handled = 0
    deadline = time.monotonic() + 60
    try:
        while handled < 2 and time.monotonic() < deadline:
            handled += consumer.poll_once()
    finally:
        consumer.close()
    assert handled == 2

    large, small = _read_all(settings, settings.commands_dlq_topic, 2)
    headers = dict(large.headers)
    assert headers["dlq_by_reference"] == b"true"
    assert headers["dlq_source_topic"].decode() == settings.commands_topic
    assert int(headers["dlq_source_offset"]) == 0
    assert int(headers["dlq_value_bytes"]) == len(body)
    assert headers["dlq_value_sha256"].decode() == hashlib.sha256(body).hexdigest()
    assert body.startswith(large.value)
    assert 0 < len(large.value) < 64 * 1024
    assert small.value == b"\x00 after the large one"
    assert b"dlq_by_reference" not in dict(small.headers)


def test_envelopes_json_cannot_take_apart_are_dead_lettered_and_passed(
    settings: Settings,
) -> None:
    ensure_topics(settings, LOG)
    envelope = {"type": "OnboardPartner", "command_id": "utf16-1", "payload": {}}
    poison = [
        b'{"type":' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # RecursionError in json
        json.dumps(envelope).encode("utf-16"),  # JSON, but not in UTF-8
    ]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for value in poison:
        producer.send(settings.commands_topic, value=value).get(30)
    producer.close()

    consumer = Wiring(settings).command_consumer()
    handled = 0
    deadline = time.monotonic() + 60
    try:
        while handled < len(poison) and time.monotonic() < deadline:
            handled += consumer.poll_once()
    finally:
        consumer.close()
    assert handled == len(poison)

    dead = _read_all(settings, settings.commands_dlq_topic, len(poison))
    assert [m.value for m in dead] == poison
    errors = [dict(m.headers)["dlq_error"].decode() for m in dead]
    assert "nested too deeply" in errors[0], errors
    assert "UTF-8" in errors[1], errors
