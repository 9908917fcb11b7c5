"""The AsyncAPI 3 document of every Kafka topic the ledger reads or writes.

Generated, never hand-kept: the events' payloads come from the same message models
every consumer decodes with (projections.contract), the command payloads from the
command models (through the gateway's payload models), the problems of rejected
commands from the gateway's problem model. `dealledger schemas` writes it to
docs/asyncapi.json beside the per-event JSON Schemas; a test keeps the committed
copy current, checks it with the official AsyncAPI parser, and validates real
messages of every topic against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from consumers.dead_letters import REFERENCE_BODY_BYTES
from infra.gateway.payloads import body_model
from infra.gateway.policy import POLICIES
from infra.gateway.problems import Problem
from infra.settings import Settings
from projections.contract.catalogue import event_kinds
from projections.contract.encoding import CE_SOURCE
from projections.contract.models import message_model
from projections.contract.values import UUID_SCHEMA

ASYNCAPI_VERSION = "3.0.0"
REF = "#/components/schemas/{model}"


def _hoisted(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    """`model`'s JSON Schema with its definitions moved into components/schemas."""
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


CLOUDEVENTS_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0, Kafka protocol binding, binary content mode; the "
    "ce_ extensions carry the ledger's envelope. Header values are UTF-8 strings.",
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {**UUID_SCHEMA, "description": "equals the payload's event_id"},
        "ce_type": _string("equals the payload's event_type"),
        "ce_source": {"const": CE_SOURCE},
        "ce_subject": {**UUID_SCHEMA, "description": "the aggregate id, also the key"},
        "ce_time": _string("when the event happened (RFC 3339, UTC)", format="date-time"),
        "content-type": {"const": "application/json"},
        "ce_aggregatetype": _string("the payload's aggregate_type"),
        "ce_aggregateversion": _string("the payload's aggregate_version", pattern="^[0-9]+$"),
        "ce_ledgerposition": _string("the payload's position", pattern="^[0-9]+$"),
        "ce_actor": _string("who caused the event, e.g. user:carol(channel_manager)"),
        "ce_commandid": _string("the command that caused the event"),
        "ce_correlationid": _string("the flow the command belongs to"),
    },
    "required": [
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_subject",
        "ce_time",
        "content-type",
    ],
}

DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The original record's headers, plus where it came from and why it "
    "could not be processed. A record too large to copy is dead-lettered by reference: "
    f"its value is the original's first {REFERENCE_BODY_BYTES} bytes.",
    "properties": {
        "dlq_error": _string("why the record could not be processed"),
        "dlq_consumer": _string("the consumer group that gave up on it"),
        "dlq_source_topic": _string("where the record was"),
        "dlq_source_partition": _string("its partition", pattern="^[0-9]+$"),
        "dlq_source_offset": _string("its offset", pattern="^[0-9]+$"),
        "dlq_by_reference": {"const": "true"},
        "dlq_value_bytes": _string("the original value's size", pattern="^[0-9]+$"),
        "dlq_value_sha256": _string("the original value's SHA-256", pattern="^[0-9a-f]{64}$"),
    },
    "required": [
        "dlq_error",
        "dlq_consumer",
        "dlq_source_topic",
        "dlq_source_partition",
        "dlq_source_offset",
    ],
}


def _command_envelopes(schemas: dict[str, Any]) -> dict[str, Any]:
    envelopes = []
    for policy in POLICIES.values():
        body = body_model(policy.command, optional=policy.self_filled)
        payload = _hoisted(body, schemas) if body is not None else {"type": "object"}
        envelopes.append(
            {
                "type": "object",
                "title": policy.type_name,
                "description": f"{policy.doing[0].upper()}{policy.doing[1:]}; roles: "
                + ", ".join(sorted(r.value for r in policy.roles)),
                "properties": {
                    "type": {"const": policy.type_name},
                    "command_id": _string(
                        "the client's idempotency key (1 to 100 characters)",
                        minLength=1,
                        maxLength=100,
                    ),
                    "api_key": _string("the caller's API key, dl_<id>_<secret>"),
                    "key_id": _string("on a topic whose producers the broker authenticates"),
                    "correlation_id": _string("recorded on every event the command causes"),
                    "payload": payload,
                },
                "required": ["type", "command_id"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": envelopes}


def _command_result(schemas: dict[str, Any]) -> dict[str, Any]:
    problem = _hoisted(Problem, schemas)
    return {
        "oneOf": [
            {
                "type": "object",
                "title": "accepted",
                "properties": {
                    "command_id": {"type": "string"},
                    "type": {"type": "string"},
                    "status": {"const": "accepted"},
                    "position": {"type": "integer", "minimum": 0},
                    "replayed": {"type": "boolean"},
                    "aggregate_id": {"anyOf": [UUID_SCHEMA, {"type": "null"}]},
                    "result": {"type": "object"},
                },
                "required": ["command_id", "type", "status", "position", "replayed", "result"],
            },
            {
                "type": "object",
                "title": "rejected",
                "properties": {
                    "command_id": {"type": "string"},
                    "type": {"type": "string"},
                    "status": {"const": "rejected"},
                    "problem": problem,
                },
                "required": ["command_id", "type", "status", "problem"],
            },
        ]
    }


_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
CHECKPOINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A signed checkpoint of the ledger tree (docs/auditing.md); check it "
    "with the operator's public key: Ed25519 over the canonical JSON (sorted keys, no "
    "spaces) of every field but `signature`.",
    "additionalProperties": False,
    "required": [
        "format", "tree_size", "root", "sealed_from", "streams", "heads_root", "time",
        "key_id", "signature",
    ],
    "properties": {
        "format": {"const": "dealledger-checkpoint/1"},
        "tree_size": {"type": "integer", "minimum": 0, "description": "sealed events"},
        "root": {**_HEX64, "description": "RFC 6962 root of the ledger tree at tree_size"},
        "sealed_from": {"type": "integer", "minimum": 0, "description": "where chaining began"},
        "streams": {"type": "integer", "minimum": 0, "description": "streams with a head"},
        "heads_root": {**_HEX64, "description": "RFC 6962 root over every stream's head"},
        "time": {"type": "string", "format": "date-time", "description": "when it was signed"},
        "key_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "signature": {"type": "string", "contentEncoding": "base64"},
    },
}  # fmt: skip


def asyncapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the ledger's topics (names as configured)."""
    settings = settings or Settings()
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    event_messages: dict[str, Any] = {}
    for kind in event_kinds():
        name = kind.event_type.replace(".", "_")
        messages[name] = {
            "name": kind.event_type,
            "title": kind.event_type,
            "summary": kind.doc or f"{kind.cls.__qualname__}",
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
            "payload": _hoisted(message_model(kind), schemas),
            "bindings": {"kafka": {"key": {**UUID_SCHEMA, "description": "the aggregate id"}}},
        }
        event_messages[name] = {"$ref": f"#/components/messages/{name}"}
    schemas["CloudEventsHeaders"] = CLOUDEVENTS_HEADERS
    schemas["DeadLetterHeaders"] = DEAD_LETTER_HEADERS
    schemas["CommandEnvelope"] = _command_envelopes(schemas)
    schemas["CommandResult"] = _command_result(schemas)
    schemas["Checkpoint"] = CHECKPOINT_SCHEMA
    messages["deadLetter"] = {
        "name": "deadLetter",
        "title": "A record that could not be processed",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "the original value, as it was (or its first bytes)"},
    }
    messages["commandEnvelope"] = {
        "name": "commandEnvelope",
        "title": "A command to execute",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/CommandEnvelope"},
        "bindings": {"kafka": {"key": {"type": "string", "description": "free; e.g. the id"}}},
    }
    messages["commandResult"] = {
        "name": "commandResult",
        "title": "What became of a command: accepted with its position, or the problem",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/CommandResult"},
        "bindings": {"kafka": {"key": _string("the command's command_id")}},
    }

    messages["checkpoint"] = {
        "name": "checkpoint",
        "title": "A signed checkpoint of the ledger tree",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/Checkpoint"},
        "bindings": {"kafka": {"key": {"const": "checkpoint"}}},
    }

    def channel(
        address: str, description: str, *names: str, partitions: int | None = None
    ) -> dict[str, Any]:
        refs = {n: {"$ref": f"#/components/messages/{n}"} for n in names}
        return {
            "address": address,
            "description": description,
            "messages": refs,
            "bindings": {
                "kafka": {"topic": address, "partitions": partitions or settings.topic_partitions}
            },
        }

    channels = {
        "events": {
            **channel(
                settings.events_topic,
                "Every stored event, at least once, in per-aggregate order (key = aggregate "
                "id). Duplicates carry the same event_id; skip by (aggregate_id, "
                "aggregate_version).",
            ),
            "messages": event_messages,
        },
        "eventsDeadLetters": channel(
            settings.events_dlq_topic, "Records the projectors could not apply.", "deadLetter"
        ),
        "commands": channel(
            settings.commands_topic,
            "Commands for `dealledger command-consumer`.",
            "commandEnvelope",
        ),
        "commandResults": channel(
            settings.command_results_topic,
            "One result per command envelope, keyed by its command_id.",
            "commandResult",
        ),
        "commandDeadLetters": channel(
            settings.commands_dlq_topic, "Records that are not command envelopes.", "deadLetter"
        ),
        "checkpoints": channel(
            settings.checkpoints_topic,
            "Signed checkpoints of the ledger tree, in signing order, kept forever: the "
            "copy outside the database that `dealledger verify` holds the store to.",
            "checkpoint",
            partitions=1,
        ),
    }
    operations = {
        "publishEvents": {
            "action": "send",
            "channel": {"$ref": "#/channels/events"},
            "summary": "The relay publishes every stored event.",
        },
        "deadLetterEvents": {
            "action": "send",
            "channel": {"$ref": "#/channels/eventsDeadLetters"},
            "summary": "The projector dead-letters what it cannot apply.",
        },
        "receiveCommands": {
            "action": "receive",
            "channel": {"$ref": "#/channels/commands"},
            "summary": "The command consumer executes command envelopes.",
        },
        "sendCommandResults": {
            "action": "send",
            "channel": {"$ref": "#/channels/commandResults"},
            "summary": "The command consumer answers every envelope.",
        },
        "deadLetterCommands": {
            "action": "send",
            "channel": {"$ref": "#/channels/commandDeadLetters"},
            "summary": "The command consumer dead-letters what is not an envelope.",
        },
        "publishCheckpoints": {
            "action": "send",
            "channel": {"$ref": "#/channels/checkpoints"},
            "summary": "The relay signs checkpoints as the ledger grows and publishes them.",
        },
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Deal Ledger topics",
            "version": "1",
            "description": "The Kafka topics Deal Ledger publishes and reads. Event "
            "payloads follow the JSON Schemas in docs/events/; see "
            "docs/analytics-consumers.md for ordering, duplicates and an example consumer.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the broker `make services-up` starts",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def write_asyncapi(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asyncapi_document(Settings.model_construct()), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
