"""Stored events -> the published JSON message and its CloudEvents headers.

One encoder serves the Kafka relay, the embedded in-process feed and rebuilds from
the store, so every consumer sees exactly the same messages.

`Encoder.encode(notification)` decodes each stored event once: the stored JSON (the
event store's own transcoding) is rewritten straight into the published form,
without building domain objects. Only an event stored under an older class version
goes the long way, through the ledger's mapper, which upcasts it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from hashlib import sha1
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import resolve_topic

from domain.ids import NAMESPACE
from domain.privacy import ERASED, WITHHELD
from domain.values import Actor, Cause, Customer, Money, actor_text
from projections.contract.catalogue import ENVELOPE_FIELDS, kind_of
from projections.contract.models import EventMessage, contract

CE_SOURCE = "/dealledger/ledger"


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


def event_id(aggregate_id: UUID | str, version: int) -> str:
    """Stable across re-publishing: derived from the stream position, not the attempt.

    This is `uuid5(NAMESPACE, "event:<aggregate id>:<version>")`, computed without
    building UUID objects (the relay does it for every event)."""
    name = f"event:{aggregate_id}:{version}".encode()
    digest = bytearray(sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return _dashed(digest[:16].hex())


_NAMESPACE_BYTES = NAMESPACE.bytes


def _dashed(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def _document(
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    version: int,
    position: int,
    occurred_at: str,
    cause: Mapping[str, Any],
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "event_id": event_id(aggregate_id, version),
        "event_type": event_type,
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "position": position,
        "occurred_at": occurred_at,
        "actor": cause["actor"],
        "command_id": cause["command_id"],
        "correlation_id": cause["correlation_id"],
        "data": data,
    }


def message_document(event: Any, position: int) -> dict[str, Any]:
    """The published JSON object of a domain event stored at `position`."""
    kind = kind_of(cast(type, type(event)))
    return _document(
        kind.event_type,
        kind.aggregate_type,
        str(event.originator_id),
        event.originator_version,
        position,
        event.timestamp.isoformat(),
        event.cause.to_json(),
        event_data(event),
    )


def to_bytes(document: Mapping[str, Any]) -> bytes:
    return orjson.dumps(document)


def cloudevent_headers(document: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """CloudEvents 1.0 Kafka protocol binding, binary content mode, plus extensions."""
    actor = document["actor"]
    return [
        _SPECVERSION,
        ("ce_id", document["event_id"].encode()),
        ("ce_type", document["event_type"].encode()),
        _SOURCE,
        ("ce_subject", document["aggregate_id"].encode()),
        ("ce_time", document["occurred_at"].encode()),
        _CONTENT_TYPE,
        ("ce_aggregatetype", document["aggregate_type"].encode()),
        ("ce_aggregateversion", str(document["aggregate_version"]).encode()),
        ("ce_ledgerposition", str(document["position"]).encode()),
        ("ce_actor", actor_text(actor["kind"], actor["id"], actor["role"]).encode()),
        ("ce_commandid", document["command_id"].encode()),
        ("ce_correlationid", document["correlation_id"].encode()),
    ]


_SPECVERSION = ("ce_specversion", b"1.0")
_SOURCE = ("ce_source", CE_SOURCE.encode())
_CONTENT_TYPE = ("content-type", b"application/json")


@dataclass(frozen=True)
class Published:
    """One stored event as it goes to Kafka."""

    position: int
    key: bytes  # the aggregate id: per-aggregate order on the topic
    value: bytes
    headers: list[tuple[str, bytes]]


def _hex_uuid(text: str) -> str:
    if len(text) != 32:
        raise _NotPlain("uuid_hex")
    return _dashed(text.lower())


def _decimal(text: str) -> str:
    return decimal_text(Decimal(text))


def _money(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"amount": data["amount"], "currency": data["currency"]}


def _same(data: Any) -> Any:
    return data


# The event store's transcodings (`_type_`), rewritten into the published forms that
# `plain` gives the decoded values.
_STORED: dict[str, Callable[[Any], Any]] = {
    "datetime_iso": _same,
    "date_iso": _same,
    "uuid_hex": _hex_uuid,
    "decimal_str": _decimal,
    "money": _money,
    "customer": _same,
    "actor": _same,
    "cause": _same,
    # A personal field: opened (or only looked at) by `Encoder._withheld`.
    "sealed": lambda data: _SealedField(data),
}


class _SealedField:
    __slots__ = ("data",)

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data


class _NotPlain(Exception):
    """A stored value this fast path does not know: take the long way."""


def _published(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        stored = value.get("_type_")
        if stored is not None and len(value) == 2 and "_data_" in value:
            convert = _STORED.get(stored)
            if convert is not None:
                return convert(value["_data_"])
            if stored.startswith("enum:"):
                return value["_data_"]
            raise _NotPlain(stored)
        return {k: v if type(v) in _PLAIN else _published(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else _published(v) for v in value]
    if kind is float:
        raise _NotPlain("float")
    return value


# What the store's JSON holds as is (floats never appear in ledger events).
_PLAIN = frozenset({str, int, bool, type(None)})


class Encoder:
    """Stored events of one ledger -> published messages (see the module docstring)."""

    def __init__(self, mapper: Mapper[UUID], *, personal: bool = False) -> None:
        """`personal`: decode personal fields to their text (for the audit history,
        which the API serves under the deal's roles); else they are withheld, as on
        the topic (docs/privacy.md)."""
        self.mapper = mapper
        self.personal = personal
        # The ledger's mapper opens sealed fields (commands/personal_data.py).
        self._reveal: Callable[[dict[str, str]], str] | None = getattr(mapper, "reveal", None)
        self._erased: Callable[[dict[str, str]], bool] | None = getattr(mapper, "is_erased", None)

    def fields(self, notification: Notification) -> tuple[str, str, str, Any, dict[str, Any]]:
        """(event type, aggregate type, occurred_at, cause, data) of a stored event,
        its JSON decoded once; a row the fast path does not know (compressed or
        encrypted stores, older class versions) is decoded the long way, upcast by
        the mapper."""
        cls = resolve_topic(notification.topic)
        kind = kind_of(cls)
        try:
            state = orjson.loads(notification.state)
            if state.pop("class_version", 1) != kind.class_version or not isinstance(state, dict):
                raise _NotPlain("an older class version: upcast by the mapper")
            timestamp = state.pop("timestamp")["_data_"]
            cause = state.pop("cause")["_data_"]
            state.pop("originator_topic", None)
            data = _published(state)
        except (_NotPlain, KeyError, TypeError, ValueError):
            event: Any = self.mapper.to_domain_event(notification)
            kind = kind_of(cast(type, type(event)))
            return (
                kind.event_type,
                kind.aggregate_type,
                event.timestamp.isoformat(),
                event.cause.to_json(),
                self._withheld(kind.cls, event_data(event)),
            )
        return kind.event_type, kind.aggregate_type, timestamp, cause, self._withheld(cls, data)

    def _withheld(self, cls: type, data: dict[str, Any]) -> dict[str, Any]:
        """Personal fields as published: `[personal]`, or `[erased]` once their key is
        gone; never their text (also not that of events stored before fields were
        encrypted, or decoded the long way). With `personal`, their text instead."""
        for name in getattr(cls, "personal_fields", ()):
            value = data.get(name)
            if isinstance(value, _SealedField):
                if self.personal and self._reveal is not None:
                    data[name] = self._reveal(value.data)
                else:
                    erased = self._erased is not None and self._erased(value.data)
                    data[name] = ERASED if erased else WITHHELD
            elif not self.personal and isinstance(value, str) and value and value != ERASED:
                data[name] = WITHHELD
        return data

    def document(self, notification: Notification) -> dict[str, Any]:
        """The published JSON object of a stored event."""
        event_type, aggregate_type, occurred_at, cause, data = self.fields(notification)
        return _document(
            event_type,
            aggregate_type,
            str(notification.originator_id),
            notification.originator_version,
            notification.id,
            occurred_at,
            cause,
            data,
        )

    def encode(self, notification: Notification) -> Published:
        document = self.document(notification)
        return Published(
            position=notification.id,
            key=document["aggregate_id"].encode(),
            value=to_bytes(document),
            headers=cloudevent_headers(document),
        )

    def message(self, notification: Notification) -> EventMessage:
        """The typed message of a stored event, checked as any consumer checks it."""
        return contract().parse(to_bytes(self.document(notification)))


def notification_to_message(mapper: Mapper[UUID], notification: Notification) -> EventMessage:
    return Encoder(mapper).message(notification)
