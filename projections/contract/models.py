"""Typed message models, derived from the event classes themselves.

For every published event type there is one pydantic model of the whole message:
the envelope (`EventMessage`'s fields) with `event_type` and `aggregate_type` fixed,
and `data` typed field by field from the event class's annotations. The models are
the one description of each event: they decode and check messages (once, in one
pass over the bytes), and they generate the published JSON Schemas and the AsyncAPI
document (projections.contract.schemas, .asyncapi).

`Contract.parse(value, headers)` is what every consumer of the events topic calls:
it accepts UTF-8 JSON whose `event_type` is published (an older version of a type is
upcast to the current one with the event class's own `upcast_vN_vN+1` methods), whose
values fit the read models, and whose `ce_type` header, when present, names the same
type. Anything else raises `InvalidMessage` saying why.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)

from domain.privacy import ERASED, WITHHELD
from domain.values import Customer, Money
from projections.contract.catalogue import EventKind, event_kinds
from projections.contract.values import (
    ActorValue,
    BigInt,
    CustomerValue,
    DateText,
    DecimalText,
    MoneyValue,
    NonEmptyText,
    Text,
    UtcTime,
    UuidText,
)

Headers = Iterable[tuple[str, bytes]] | None
# A JSON string's NUL: \u0000 after an even number of backslashes (\\u0000 is text).
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_EVENT_TYPE = re.compile(rb'"event_type":\s*"([a-z0-9_.]{1,120})"')


class InvalidMessage(ValueError):
    """A message that cannot be decoded or does not follow its published schema."""


class EventMessage(BaseModel):
    """The envelope every published event shares; `data` is typed per event type."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    event_id: Annotated[
        UuidText, Field(description="Stable per (aggregate_id, aggregate_version); equals ce_id.")
    ]
    event_type: str
    aggregate_type: str
    aggregate_id: Annotated[UuidText, Field(description="Also the Kafka key and ce_subject.")]
    aggregate_version: Annotated[
        BigInt, Field(description="Position of the event in its aggregate's stream (1 = created).")
    ]
    position: Annotated[BigInt, Field(description="Global ledger position (notification id).")]
    occurred_at: Annotated[UtcTime, Field(description="When the event happened, in UTC.")]
    actor: ActorValue
    command_id: NonEmptyText
    correlation_id: NonEmptyText
    data: Any

    #: `aggregate.event`, e.g. `registration.approved`: what projections match on.
    name: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def _field_type(tp: Any) -> Any:
    """The pydantic type of one event field, from its annotation on the event class."""
    if tp is Any:
        return Any
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        members = tuple(_field_type(a) for a in get_args(tp))
        return Union[members]  # noqa: UP007 - built at run time from a tuple
    if origin is list:
        (item,) = get_args(tp)
        return list[_field_type(item)]  # type: ignore[misc]
    if origin is dict:
        key, item = get_args(tp)
        if key is not str:
            raise TypeError(f"JSON object keys are strings, not {key!r}")
        return dict[str, _field_type(item)]  # type: ignore[misc]
    simple: dict[Any, Any] = {
        str: Text,
        int: int,
        bool: bool,
        type(None): type(None),
        Decimal: DecimalText,
        datetime: UtcTime,
        date: DateText,
        UUID: UuidText,
        Money: MoneyValue,
        Customer: CustomerValue,
    }
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return Literal[tuple(member.value for member in tp)]
    raise TypeError(f"no message type for event field type {tp!r}")


PERSONAL = (
    f"Personal data, kept encrypted in the ledger: published as {WITHHELD!r} (read the "
    f"text through the HTTP API, as the deal's roles allow), or {ERASED!r} once its data "
    "subject was erased; empty when none was given."
)


def _data_field(kind: EventKind, name: str, tp: Any) -> Any:
    if name in getattr(kind.cls, "personal_fields", ()):
        return Annotated[
            _field_type(tp), Field(description=PERSONAL, json_schema_extra={"x-personal": True})
        ]
    return _field_type(tp)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "_").split("_"))


@cache
def message_model(kind: EventKind) -> type[EventMessage]:
    """The model of the whole published message of `kind`."""
    data = create_model(  # type: ignore[call-overload]
        f"{_camel(kind.name)}Data",
        __config__=ConfigDict(strict=True, extra="forbid", frozen=True),
        __doc__=f"The fields of the {kind.cls.__qualname__} event.",
        **{name: (_data_field(kind, name, tp), ...) for name, tp in kind.fields.items()},
    )
    # Types built at run time: mypy sees them as plain values.
    event_type: Any = Literal[kind.event_type]
    aggregate_type: Any = Literal[kind.aggregate_type]
    model: type[EventMessage] = create_model(
        f"{_camel(kind.name)}Message",
        __base__=EventMessage,
        __doc__=kind.doc,
        event_type=(event_type, ...),
        aggregate_type=(aggregate_type, ...),
        data=(data, ...),
    )
    model.name = kind.name
    return model


class Contract:
    """Decodes and checks messages of the events topic (see the module docstring)."""

    def __init__(self, kinds: Iterable[EventKind] | None = None) -> None:
        self.kinds = tuple(kinds if kinds is not None else event_kinds())
        self.models = {kind.event_type: message_model(kind) for kind in self.kinds}
        self._by_type = {t.encode(): m for t, m in self.models.items()}
        union: Any = Union[tuple(self.models.values())]  # noqa: UP007 - built at run time
        tagged: Any = Annotated[union, Field(discriminator="event_type")]
        self._adapter: TypeAdapter[EventMessage] = TypeAdapter(tagged)
        # Older versions of a type: its current kind, upcast on the way in.
        self._older: dict[str, EventKind] = {
            kind.type_of_version(version): kind
            for kind in self.kinds
            for version in range(1, kind.class_version)
        }

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self.models)

    def parse(self, value: bytes | str | None, headers: Headers = None) -> EventMessage:
        """The message in a record's value, or InvalidMessage saying why it is not one."""
        if value is None:
            raise InvalidMessage("message has no value")
        raw = (
            value
            if type(value) is bytes
            else (value.encode() if isinstance(value, str) else bytes(value))
        )
        if b"\\u0000" in raw and _NUL.search(raw):
            raise InvalidMessage("text holds a NUL character (PostgreSQL text cannot store it)")
        # The type is read off the bytes so that one model validates them in one pass;
        # the model checks `event_type` again, so a misleading match cannot pass.
        found = _EVENT_TYPE.search(raw, 0, 512)
        model = self._by_type.get(found.group(1)) if found else None
        try:
            if model is not None:
                message = model.model_validate_json(raw)
            else:
                message = self._adapter.validate_json(raw)
            published = message.event_type
        except ValidationError as exc:
            published, message = self._older_version(raw, exc, model is not None)
        if headers:
            _check_ce_type(headers, published)
        return message

    def from_json(self, document: Mapping[str, Any]) -> EventMessage:
        """A message from its decoded JSON object (checked exactly as `parse` does)."""
        return self.parse(json.dumps(document, separators=(",", ":"), ensure_ascii=False))

    def _older_version(
        self, raw: bytes, error: ValidationError, typed: bool
    ) -> tuple[str, EventMessage]:
        """(the type the record named, the message upcast to the current version)."""
        document = _object(raw)
        if typed:  # a published type whose message is off its schema
            raise _invalid(error, document) from None
        published = document.get("event_type")
        kind = self._older.get(published) if isinstance(published, str) else None
        if kind is None or not isinstance(published, str):
            raise _invalid(error, document) from None
        data = document.get("data")
        if not isinstance(data, dict):
            raise InvalidMessage(f"{published}: data is not an object")
        version = int(published.rsplit(".v", 1)[1])
        for step in range(version, kind.class_version):
            upcast = getattr(kind.cls, f"upcast_v{step}_v{step + 1}", None)
            if upcast is None:
                raise InvalidMessage(f"{published}: no upcast from v{step} to v{step + 1}")
            upcast(data)
        document["event_type"] = kind.event_type
        try:
            message = self._adapter.validate_json(json.dumps(document))
        except ValidationError as exc:
            raise _invalid(exc, document) from None
        return published, message


def _object(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidMessage(f"value is not JSON in UTF-8: {exc!s:.200}") from None
    if not isinstance(document, dict):
        raise InvalidMessage("value is not a JSON object")
    return document


def _invalid(error: ValidationError, document: Mapping[str, Any] | None = None) -> InvalidMessage:
    first = error.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    if kind in ("json_invalid", "json_type"):
        return InvalidMessage(f"value is not JSON in UTF-8: {first['msg']}")
    if kind in ("model_type", "model_attributes_type", "dict_type") and not first["loc"]:
        return InvalidMessage("value is not a JSON object")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        published = (document or {}).get("event_type")
        return InvalidMessage(f"unknown event type {published!r:.120}: no published schema")
    loc = list(first["loc"])
    named = (document or {}).get("event_type")
    if loc and isinstance(loc[0], str) and loc[0].startswith("dealledger."):
        named = loc.pop(0)  # validated through the union: its tag comes first
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    why = first["msg"]
    return InvalidMessage(f"{named!s:.120} does not follow its published schema at {where}: {why}")


def _check_ce_type(headers: Headers, published: str) -> None:
    expected = published.encode()
    for name, header in headers or ():
        if name == "ce_type" and header != expected:
            raise InvalidMessage(
                f"header ce_type {header[:200]!r} disagrees with the body's event_type "
                f"{published!r}"
            )


@cache
def contract() -> Contract:
    """The contract of every published event type (built once per process)."""
    return Contract()
