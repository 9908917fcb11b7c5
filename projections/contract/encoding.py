"""Stored events -> the published JSON message and its CloudEvents headers.

One encoder serves the Kafka relay and the embedded in-process feed, so the
projectors see exactly the same messages either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import Mapper, Notification

from domain.ids import NAMESPACE
from domain.values import Actor, Cause, Customer, Money
from projections.contract.message import EventMessage

CE_SOURCE = "/dealledger/ledger"
#: Event attributes that travel in the message envelope (ids, version, time, cause)
#: rather than in `data`: those every ledger event carries by being one.
ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "cause"}
)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_type_of(event: Any) -> tuple[str, str]:
    """(aggregate type, CloudEvents type) from the event class, e.g.
    ('registration', 'dealledger.registration.approved.v1')."""
    cls = type(event)
    aggregate, _, event_name = cls.__qualname__.rpartition(".")
    aggregate_type = snake(aggregate.rsplit(".", 1)[-1])
    version = getattr(cls, "class_version", 1)
    return aggregate_type, f"dealledger.{aggregate_type}.{snake(event_name)}.v{version}"


def plain(value: Any) -> Any:
    """JSON-safe form: Decimal as string, aware ISO-8601 times, enums by value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, float):
        raise TypeError("floats never appear in ledger events")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Money | Customer | Actor | Cause):
        return value.to_json()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    raise TypeError(f"no JSON form for {type(value).__name__}")


def decimal_text(value: Decimal) -> str:
    """Plain positional notation (never `1E+5`), and no negative zero."""
    return format(abs(value) if value.is_zero() else value, "f")


def event_data(event: Any) -> dict[str, Any]:
    """What the event itself says, JSON-safe: its attributes less the envelope ones."""
    return {k: plain(v) for k, v in vars(event).items() if k not in ENVELOPE_FIELDS}


def event_id(aggregate_id: UUID, version: int) -> str:
    """Stable across re-publishing: derived from the stream position, not the attempt."""
    return str(uuid5(NAMESPACE, f"event:{aggregate_id}:{version}"))


def to_message(event: Any, position: int) -> EventMessage:
    aggregate_type, ce_type = event_type_of(event)
    cause: Cause = event.cause
    data = event_data(event)
    return EventMessage(
        event_id=event_id(event.originator_id, event.originator_version),
        event_type=ce_type,
        aggregate_type=aggregate_type,
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        position=position,
        occurred_at=event.timestamp,
        actor=cause.actor.to_json(),
        command_id=cause.command_id,
        correlation_id=cause.correlation_id,
        data=data,
    )


def notification_to_message(mapper: Mapper[UUID], notification: Notification) -> EventMessage:
    return to_message(mapper.to_domain_event(notification), notification.id)


def cloudevent_headers(message: EventMessage) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka protocol binding, binary content mode, plus extensions."""
    actor = Actor.from_json(message.actor)
    headers = {
        "ce_specversion": "1.0",
        "ce_id": message.event_id,
        "ce_type": message.event_type,
        "ce_source": CE_SOURCE,
        "ce_subject": str(message.aggregate_id),
        "ce_time": message.occurred_at.isoformat(),
        "content-type": "application/json",
        "ce_aggregatetype": message.aggregate_type,
        "ce_aggregateversion": str(message.aggregate_version),
        "ce_ledgerposition": str(message.position),
        "ce_actor": str(actor),
        "ce_commandid": message.command_id,
        "ce_correlationid": message.correlation_id,
    }
    return [(k, v.encode()) for k, v in headers.items()]
