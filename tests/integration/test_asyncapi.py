"""The AsyncAPI document of every topic: the official AsyncAPI parser accepts it, and
the real messages on every topic — events from the relay, command envelopes and their
results, dead letters of both — follow the payload and header schemas it gives."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from kafka import KafkaConsumer, KafkaProducer
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from domain.clock import ManualClock
from infra.bootstrap import Wiring
from infra.kafka.admin import ensure_topics
from infra.kafka.asyncapi import asyncapi_document
from infra.logging import get_logger
from infra.settings import Settings
from tests.integration.flow import ROOT, drop_schema, isolated_settings
from tests.integration.workload import Workload
from tests.support.actors import MANAGER

LOG = get_logger("test")
PARSER = ROOT / ".cache" / "asyncapi"
DOCUMENT_ID = "urn:dealledger:asyncapi"


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = isolated_settings(database_url, kafka_bootstrap, topic_partitions=2)
    yield settings
    drop_schema(settings)


def test_the_official_asyncapi_parser_accepts_the_committed_document() -> None:
    if not (PARSER / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail(f"the AsyncAPI parser is not installed in {PARSER}: run `make test`")
    # Run from the parser's folder, so that the script's import finds it there.
    result = subprocess.run(
        ["node", "--input-type=module", "-", str(ROOT / "docs" / "asyncapi.json")],
        input=(Path(__file__).parent / "asyncapi_check.mjs").read_text(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PARSER,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["parsed"]
    assert summary["errors"] == 0
    assert summary["channels"] == 6


def _validator(document: dict[str, Any], schema: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_ID, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{DOCUMENT_ID}#/components/schemas/{schema}"},
        registry=registry,
        format_checker=FormatChecker(),
    )


def _payload_schema(document: dict[str, Any], message: str) -> str:
    ref: str = document["components"]["messages"][message]["payload"]["$ref"]
    return ref.rsplit("/", 1)[1]


def _read(settings: Settings, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def _headers(record: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers or []}


def _errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def test_every_topics_real_messages_follow_the_asyncapi_document(settings: Settings) -> None:
    document = asyncapi_document(settings)
    ensure_topics(settings, LOG)
    clock = ManualClock(datetime.now(UTC))
    wiring = Wiring(settings, clock=clock)
    try:
        ledger = wiring.ledger()
        workload = Workload(ledger, clock, seed=12)
        workload.onboard()
        while workload.sent < 150:
            workload.step()
        wiring.relay().drain()

        key = wiring.key_store().create(MANAGER)
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        envelopes: list[Any] = [
            {"type": "OnboardPartner", "command_id": "asyncapi-1", "api_key": key,
             "payload": {"partner_code": "tailspin", "name": "Tailspin"}},
            {"type": "OnboardPartner", "command_id": "asyncapi-2", "api_key": key,
             "payload": {"partner_code": "", "name": "Nobody"}},
        ]  # fmt: skip
        for envelope in envelopes:
            producer.send(settings.commands_topic, value=json.dumps(envelope).encode()).get(30)
        producer.send(settings.commands_topic, value=b"not an envelope").get(30)
        producer.send(settings.events_topic, key=b"poison", value=b"{}").get(30)
        producer.close()

        consumer = wiring.command_consumer()
        handled, deadline = 0, time.monotonic() + 60
        while handled < 3 and time.monotonic() < deadline:
            handled += consumer.poll_once()
        consumer.close()
        projector = wiring.projector()
        deadline = time.monotonic() + 60
        while projector.dead_lettered < 1 and time.monotonic() < deadline:
            projector.poll_once()
    finally:
        wiring.close()

    events = _read(settings, settings.events_topic)
    headers = _validator(document, "CloudEventsHeaders")
    checked = 0
    for record in events:
        if record.key == b"poison":
            continue
        body = json.loads(record.value)
        message = body["event_type"].replace(".", "_")
        payload = _validator(document, _payload_schema(document, message))
        assert not _errors(payload, body), body
        assert not _errors(headers, _headers(record)), _headers(record)
        checked += 1
    assert checked > 200

    results = [json.loads(r.value) for r in _read(settings, settings.command_results_topic)]
    assert {r["status"] for r in results} == {"accepted", "rejected"}
    for result in results:
        assert not _errors(_validator(document, "CommandResult"), result), result
    envelope_schema = _validator(document, "CommandEnvelope")
    accepted, rejected = envelopes
    assert not _errors(envelope_schema, accepted), accepted
    # The envelope the consumer rejected (a blank partner code) is off the schema too.
    assert _errors(envelope_schema, rejected)

    dead = _read(settings, settings.commands_dlq_topic) + _read(settings, settings.events_dlq_topic)
    assert len(dead) == 2
    for record in dead:
        assert not _errors(_validator(document, "DeadLetterHeaders"), _headers(record))
