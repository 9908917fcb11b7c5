"""JSON Schemas (draft 2020-12) of the messages published to `dealledger.events.v1`.

One schema per event type describes the WHOLE published value: the envelope written
by `EventMessage.to_json()` and the event's `data`, derived from the annotated fields
of the event class (the same fields `projections.contract.encoding.to_message` publishes, i.e. the
instance attributes minus the envelope ones). `write_schemas` renders them to files;
`docs/events/` holds the committed copy, and a unit test keeps it current.
"""

from __future__ import annotations

import dataclasses
import json
import types
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from domain.base import LedgerAggregate
from domain.command_record import CommandRecord
from domain.deal import Deal
from domain.partner import Partner
from domain.protection import ChannelProtection, CustomerIndex
from domain.registration import Registration
from domain.values import ActorKind, Customer, Money, Role
from projections.contract.encoding import ENVELOPE_FIELDS, event_type_of

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URI = "https://dealledger.example/schemas/"

#: Every aggregate whose events are stored, and therefore published.
AGGREGATES: tuple[type[LedgerAggregate], ...] = (
    Partner,
    Registration,
    ChannelProtection,
    CustomerIndex,
    Deal,
    CommandRecord,
)
#: Aggregate types that are the ledger's own bookkeeping, not business facts.
INTERNAL_AGGREGATE_TYPES = frozenset({"channel_protection", "customer_index", "command_record"})

# `str(Decimal)` is what is published; it switches to exponent notation for some
# values (Decimal("1E+5") stays "1E+5"), so the exponent is part of the pattern.
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?(E[+-][0-9]+)?$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Times are aware and in UTC; `datetime.isoformat()` writes the offset as +00:00.
UTC_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)$"

_DECIMAL: dict[str, Any] = {
    "type": "string",
    "pattern": DECIMAL_PATTERN,
    "description": "An exact decimal number written as a string (never a JSON number).",
}
_UUID: dict[str, Any] = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
_DATE: dict[str, Any] = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
_DATETIME: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "pattern": UTC_TIME_PATTERN,
}

_DEFS: dict[str, dict[str, Any]] = {
    "money": {
        "type": "object",
        "description": "An exact amount in one ISO 4217 currency; never converted.",
        "properties": {
            "amount": _DECIMAL,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        },
        "required": ["amount", "currency"],
        "additionalProperties": False,
    },
    "customer": {
        "type": "object",
        "description": "The end customer; `domain` is normalised (lower case, no scheme/www).",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "domain": {"type": "string", "minLength": 1},
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
        },
        "required": ["name", "domain", "country"],
        "additionalProperties": False,
    },
    "actor": {
        "type": "object",
        "description": "Who issued the command that caused the event.",
        "properties": {
            "kind": {"type": "string", "enum": [k.value for k in ActorKind]},
            "id": {"type": "string", "minLength": 1},
            "role": {"type": "string", "enum": [r.value for r in Role]},
        },
        "required": ["kind", "id", "role"],
        "additionalProperties": False,
    },
}
_VALUE_DEFS: dict[type, str] = {Money: "money", Customer: "customer"}


def event_classes() -> list[type]:
    """Every concrete event class of the ledger's aggregates, in declaration order.

    These are the classes nested in an aggregate that subclass `LedgerAggregate.Created`
    or `LedgerAggregate.Event`, except the aggregate's own `Created`/`Event` bases
    (which the event-sourcing library generates and the ledger never records).
    """
    found: list[type] = []
    for aggregate in AGGREGATES:
        for name, value in vars(aggregate).items():
            if (
                isinstance(value, type)
                and issubclass(value, LedgerAggregate.Created | LedgerAggregate.Event)
                and name not in ("Created", "Event")
                and value.__qualname__ == f"{aggregate.__qualname__}.{name}"
            ):
                found.append(value)
    return found


def event_type_of_class(cls: type) -> tuple[str, str]:
    """(aggregate type, event type) exactly as `projections.contract.encoding.event_type_of` names
    published events of `cls` (it only looks at the event's class)."""
    return event_type_of(object.__new__(cls))


def data_fields(cls: type) -> dict[str, Any]:
    """The fields published in `data`, in declaration order, with resolved types.

    `get_type_hints` evaluates each annotation in the globals of the module that
    defines it (the events' modules use postponed annotations)."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in ENVELOPE_FIELDS}


def _docstring(cls: type) -> str | None:
    """The docstring written on the event class, not one generated by `dataclass`
    (eventsourcing wraps event classes, so look along same-named classes)."""
    for klass in cls.__mro__:
        if klass.__qualname__ != cls.__qualname__ or klass.__module__ != cls.__module__:
            continue
        doc = klass.__dict__.get("__doc__")
        if isinstance(doc, str) and doc.strip() and not doc.startswith(f"{cls.__name__}("):
            return " ".join(doc.split())
    return None


class _Builder:
    def __init__(self) -> None:
        self.used_defs: set[str] = set()

    def value(self, tp: Any) -> dict[str, Any]:
        if tp is Any:
            return {}
        origin = get_origin(tp)
        if origin is Union or origin is types.UnionType:
            members = [a for a in get_args(tp) if a is not type(None)]
            options = [self.value(a) for a in members]
            if len(members) < len(get_args(tp)):
                options.append({"type": "null"})
            return options[0] if len(options) == 1 else {"anyOf": options}
        if origin is list:
            (item,) = get_args(tp)
            return {"type": "array", "items": self.value(item)}
        if origin is dict:
            key, item = get_args(tp)
            if key is not str:
                raise TypeError(f"JSON object keys are strings, not {key!r}")
            values = self.value(item)
            return {"type": "object", **({"additionalProperties": values} if values else {})}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is str:
            return {"type": "string"}
        if tp is Decimal:
            return dict(_DECIMAL)
        if tp is datetime:
            return dict(_DATETIME)
        if tp is date:
            return dict(_DATE)
        if tp is UUID:
            return dict(_UUID)
        if isinstance(tp, type) and issubclass(tp, Enum):
            choices = [member.value for member in tp]
            if all(isinstance(c, str) for c in choices):
                return {"type": "string", "enum": choices}
            return {"enum": choices}
        if tp in _VALUE_DEFS:
            name = _VALUE_DEFS[tp]
            self.used_defs.add(name)
            return {"$ref": f"#/$defs/{name}"}
        raise TypeError(f"no JSON Schema for event field type {tp!r}")


def event_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of the full published message (envelope and data) of `cls`."""
    aggregate_type, event_type = event_type_of_class(cls)
    builder = _Builder()
    builder.used_defs.add("actor")
    fields = data_fields(cls)
    data = {
        "type": "object",
        "description": f"The fields of the {cls.__qualname__} event.",
        "properties": {name: builder.value(tp) for name, tp in fields.items()},
        "required": list(fields),
        "additionalProperties": False,
    }
    title = f"{event_type} ({cls.__qualname__})"
    if aggregate_type in INTERNAL_AGGREGATE_TYPES:
        title += ", internal bookkeeping"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE_URI}{event_type}.json",
        "title": title,
    }
    doc = _docstring(cls)
    if doc:
        schema["description"] = doc
    schema |= {
        "type": "object",
        "properties": {
            "event_id": {
                **_UUID,
                "description": "Stable per (aggregate_id, aggregate_version); equals ce_id.",
            },
            "event_type": {"const": event_type},
            "aggregate_type": {"const": aggregate_type},
            "aggregate_id": {**_UUID, "description": "Also the Kafka key and ce_subject."},
            "aggregate_version": {
                "type": "integer",
                "minimum": 1,
                "description": "Position of the event in its aggregate's stream (1 = created).",
            },
            "position": {
                "type": "integer",
                "minimum": 1,
                "description": "Global ledger position (notification id).",
            },
            "occurred_at": {**_DATETIME, "description": "When the event happened, in UTC."},
            "actor": {"$ref": "#/$defs/actor"},
            "command_id": {"type": "string", "minLength": 1},
            "correlation_id": {"type": "string", "minLength": 1},
            "data": data,
        },
        "required": [
            "event_id",
            "event_type",
            "aggregate_type",
            "aggregate_id",
            "aggregate_version",
            "position",
            "occurred_at",
            "actor",
            "command_id",
            "correlation_id",
            "data",
        ],
        "additionalProperties": False,
        "$defs": {name: _DEFS[name] for name in sorted(builder.used_defs)},
    }
    return schema


def schema_file_name(event_type: str) -> str:
    return f"{event_type}.json"


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_schemas(out_dir: Path) -> list[Path]:
    """Write `<event_type>.json` per event type and `index.json`; returns the paths
    written (the index last). Files already in `out_dir` are overwritten, never removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    entries: list[dict[str, Any]] = []
    for cls in event_classes():
        aggregate_type, event_type = event_type_of_class(cls)
        schema = event_schema(cls)
        path = out_dir / schema_file_name(event_type)
        path.write_text(_dump(schema), encoding="utf-8")
        written.append(path)
        entries.append(
            {
                "event_type": event_type,
                "ce_type": event_type,
                "aggregate_type": aggregate_type,
                "event_class": f"{cls.__module__}.{cls.__qualname__}",
                "class_version": int(getattr(cls, "class_version", 1)),
                "internal": aggregate_type in INTERNAL_AGGREGATE_TYPES,
                "schema": path.name,
                "$id": schema["$id"],
            }
        )
    index = out_dir / "index.json"
    index.write_text(_dump({"event_types": entries}), encoding="utf-8")
    written.append(index)
    return written
