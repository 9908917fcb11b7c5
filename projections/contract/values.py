"""The value types of published messages, as pydantic types with their JSON Schema.

Each type checks the exact text form the ledger publishes (decimals as plain strings,
canonical lower-case UUIDs, `YYYY-MM-DD` dates, UTC times with an offset) and turns it
into the Python value once; its JSON Schema is the one the published schemas show.
Strings never hold NUL: the ledger refuses it in every command, and PostgreSQL text
cannot store it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from domain.currencies import ISO_4217
from domain.values import ActorKind, Role, actor_text

# Versions and positions are stored in BIGINT columns (read models, offsets).
MAX_BIGINT = 2**63 - 1

# `str(Decimal)` is what is published for money amounts; it switches to exponent
# notation for some values (Decimal("1E+5") stays "1E+5"), so the exponent is allowed.
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?(E[+-][0-9]+)?$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Times are aware and in UTC; `datetime.isoformat()` writes the offset as +00:00.
UTC_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)$"

DECIMAL_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": DECIMAL_PATTERN,
    "description": "An exact decimal number written as a string (never a JSON number).",
}
UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
DATE_SCHEMA: dict[str, Any] = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
TIME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "pattern": UTC_TIME_PATTERN,
}

# Checked in pydantic's core where a pattern can say it; Python runs only where a
# value must be converted or a pattern cannot say it (a real calendar date, UTC).


def _real_date(value: str) -> str:
    date.fromisoformat(value)  # 2026-02-30 has the form of a date but is none
    return value


def _known_currency(value: str) -> str:
    if value not in ISO_4217:
        raise ValueError(f"{value!r} is not an ISO 4217 currency")
    return value


def _utc(value: datetime) -> datetime:
    if value.utcoffset() != _ZERO:
        raise ValueError("times are published in UTC (offset +00:00)")
    return value if value.tzinfo is UTC else value.replace(tzinfo=UTC)


_ZERO = timedelta(0)


#: Exact decimals, published as strings; decoded to `Decimal`.
DecimalText = Annotated[
    str,
    Field(pattern=DECIMAL_PATTERN),
    AfterValidator(Decimal),
    PlainSerializer(str),
    WithJsonSchema(DECIMAL_SCHEMA),
]
#: Canonical lower-case UUIDs; kept as text (read models store ids as text).
UuidText = Annotated[str, Field(pattern=UUID_PATTERN), WithJsonSchema(UUID_SCHEMA)]
#: `YYYY-MM-DD`; kept as text (read models store dates as text).
DateText = Annotated[
    str, Field(pattern=DATE_PATTERN), AfterValidator(_real_date), WithJsonSchema(DATE_SCHEMA)
]
#: Aware UTC times, decoded to `datetime`; published with a +00:00 offset.
UtcTime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(datetime.isoformat),
    WithJsonSchema(TIME_SCHEMA),
]
Text = str
NonEmptyText = Annotated[str, Field(min_length=1)]
BigInt = Annotated[int, Field(ge=1, le=MAX_BIGINT)]


class ValueModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class MoneyValue(ValueModel):
    """An exact amount in one ISO 4217 currency; never converted."""

    model_config = ConfigDict(title="money")
    amount: DecimalText
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$"), AfterValidator(_known_currency)]


class CustomerValue(ValueModel):
    """The end customer; `domain` is normalised (lower case, no scheme/www)."""

    model_config = ConfigDict(title="customer")
    name: NonEmptyText
    domain: NonEmptyText
    country: Annotated[str, Field(pattern="^[A-Z]{2}$")]


class ActorValue(ValueModel):
    """Who issued the command that caused the event."""

    model_config = ConfigDict(title="actor")
    kind: ActorKind
    id: NonEmptyText
    role: Role

    def __str__(self) -> str:
        return actor_text(self.kind.value, self.id, self.role.value)
