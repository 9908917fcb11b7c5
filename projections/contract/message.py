"""The event message every projector consumes, decoded from Kafka or the local log.

Field names are the published contract (see docs/analytics-consumers.md);
`parse_message` refuses anything that does not match it.
"""

from __future__ import annotations

import json
import re
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


# Versions and positions are stored in BIGINT columns (read models, offsets).
MAX_BIGINT = 2**63 - 1
# `dealledger.<aggregate>.<event>.v<N>`, exactly four parts.
EVENT_TYPE = re.compile(r"dealledger\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]{0,5}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_value(value: bytes | str | None) -> dict[str, Any]:
    """The JSON object a message value holds. The value must be UTF-8 (JSON on the
    wire is; `json.loads` would otherwise guess UTF-16 or UTF-32 from raw bytes)."""
    if value is None:
        raise InvalidMessage("message has no value")
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessage(f"value is not JSON: not UTF-8 ({exc})") from None
    try:
        raw = json.loads(value, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidMessage("value is nested too deeply to decode") from None
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise InvalidMessage(f"value is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidMessage("value is not a JSON object")
    return raw


def parse_message(value: bytes | str | None) -> EventMessage:
    return message_from_json(decode_value(value))


def message_from_json(raw: dict[str, Any]) -> EventMessage:
    """The envelope of a decoded message, with its types and ranges checked (`data`
    is checked against the event's schema by the caller or when it is decoded)."""
    event_type = raw.get("event_type")
    if not isinstance(event_type, str) or not EVENT_TYPE.fullmatch(event_type):
        raise InvalidMessage(
            f"unknown event type {event_type!r} (expected dealledger.<aggregate>.<event>.v<N>)"
        )
    try:
        occurred_at = datetime.fromisoformat(_text(raw, "occurred_at"))
        if occurred_at.utcoffset() is None:
            raise InvalidMessage("occurred_at must carry a UTC offset")
        return EventMessage(
            event_id=_text(raw, "event_id"),
            event_type=event_type,
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


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"{key} must be a non-empty string")
    return value


def _positive(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_BIGINT:
        raise InvalidMessage(f"{key} must be an integer from 1 to {MAX_BIGINT}, not {value!r:.40}")
    return value
