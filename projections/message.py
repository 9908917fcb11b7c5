"""The event message every projector consumes, decoded from Kafka or the local log.

Field names are the published contract (see docs/analytics-consumers.md);
`parse_message` refuses anything that does not match it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


class InvalidMessage(ValueError):
    """A message that cannot be decoded or does not follow the event schema."""


@dataclass(frozen=True)
class EventMessage:
    event_id: str
    event_type: str  # e.g. dealledger.registration.approved.v1
    aggregate_type: str  # e.g. registration
    aggregate_id: UUID
    aggregate_version: int
    position: int  # ledger position (notification id)
    occurred_at: datetime
    actor: dict[str, str]
    command_id: str
    correlation_id: str
    data: dict[str, Any]

    @property
    def name(self) -> str:
        """`aggregate.event` without prefix and version, e.g. `registration.approved`."""
        parts = self.event_type.split(".")
        return ".".join(parts[1:-1])

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": str(self.aggregate_id),
            "aggregate_version": self.aggregate_version,
            "position": self.position,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": self.actor,
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "data": self.data,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def parse_message(value: bytes | str | None) -> EventMessage:
    if value is None:
        raise InvalidMessage("message has no value")
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMessage(f"value is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidMessage("value is not a JSON object")
    try:
        occurred_at = datetime.fromisoformat(str(raw["occurred_at"]))
        if occurred_at.utcoffset() is None:
            raise InvalidMessage("occurred_at must carry a UTC offset")
        message = EventMessage(
            event_id=_text(raw, "event_id"),
            event_type=_text(raw, "event_type"),
            aggregate_type=_text(raw, "aggregate_type"),
            aggregate_id=UUID(_text(raw, "aggregate_id")),
            aggregate_version=_positive(raw, "aggregate_version"),
            position=_positive(raw, "position"),
            occurred_at=occurred_at,
            actor=dict(raw["actor"]),
            command_id=_text(raw, "command_id"),
            correlation_id=str(raw.get("correlation_id") or ""),
            data=dict(raw["data"]),
        )
    except InvalidMessage:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidMessage(f"value does not follow the event schema: {exc!r}") from None
    if not message.event_type.startswith("dealledger.") or message.event_type.count(".") < 3:
        raise InvalidMessage(f"unknown event type {message.event_type!r}")
    return message


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"{key} must be a non-empty string")
    return value


def _positive(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidMessage(f"{key} must be a positive integer")
    return value
