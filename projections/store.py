"""The read-model store: one schema, the same SQL on PostgreSQL (psycopg 3) and SQLite.

Storage conventions, chosen so that every statement runs unchanged on both databases
and rebuilding a model yields byte-for-byte the same rows:

- Money is an exact integer of micro-units (``amount * 10**6``) in a BIGINT column
  next to a ``currency`` column; SQL ``SUM`` over it is exact on both databases and
  amounts are only ever added up within one currency. Amounts with more than six
  decimals, or beyond the signed 64-bit range (about 9.2 * 10**12 units), are refused.
- Times are TEXT in one fixed form, UTC with microseconds
  (``2026-01-05T09:00:00.000000+00:00``), so text order is time order on both
  databases; dates are TEXT ``YYYY-MM-DD``. Ids are TEXT (canonical UUID form).
- Decimals that are not money (percentages, attribution shares) are TEXT.
- Booleans are INTEGER 0/1.

`ReadStore` never commits or rolls back: the caller owns the transaction (psycopg
``with conn.transaction():``, sqlite3 ``with conn:``), because the consumer stores
its Kafka offsets in that same transaction.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, Protocol

from domain.currencies import minor_units

Dialect = Literal["postgres", "sqlite"]

MICROS = 10**6
_MAX_BIGINT = 2**63 - 1
_PLACEHOLDER = re.compile(r"%([s%])")

APPLIED_TABLE = "rm_applied"
POSITION_TABLE = "rm_position"


class Connection(Protocol):
    """The part of a DB-API connection the store uses (psycopg 3 and sqlite3 both fit)."""

    def cursor(self) -> Any: ...


@dataclass(frozen=True)
class Table:
    name: str
    projection: str | None  # None: the shared bookkeeping tables
    columns: tuple[str, ...]  # column definitions, in order
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    def create_sql(self) -> list[str]:
        body = ",\n    ".join([*self.columns, f"PRIMARY KEY ({', '.join(self.primary_key)})"])
        statements = [f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"]
        for columns in self.indexes:
            index = f"{self.name}_by_{'_'.join(columns)}"
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {index} ON {self.name} ({', '.join(columns)})"
            )
        return statements


TABLES: tuple[Table, ...] = (
    # -- bookkeeping shared by every projection ---------------------------------------
    Table(
        APPLIED_TABLE,
        None,
        (
            "projection TEXT NOT NULL",
            "aggregate_id TEXT NOT NULL",
            "version BIGINT NOT NULL",  # the last version applied to this projection
        ),
        ("aggregate_id", "projection"),  # looked up by aggregate for every message
    ),
    Table(
        POSITION_TABLE,
        None,
        ("projection TEXT NOT NULL", "position BIGINT NOT NULL"),  # highest ledger position
        ("projection",),
    ),
    # -- pipeline -------------------------------------------------------------------
    Table(
        "rm_pipeline_deal",
        "pipeline",
        (
            "deal_id TEXT NOT NULL",
            "title TEXT NOT NULL",
            "customer_name TEXT NOT NULL",
            "customer_domain TEXT NOT NULL",
            "product_line TEXT NOT NULL",
            "pipeline TEXT NOT NULL",
            "stage TEXT NOT NULL",
            "status TEXT NOT NULL",  # open | won | lost (kept so a reopen works)
            "amount_micros BIGINT NOT NULL",
            "currency TEXT NOT NULL",
            "probability TEXT NOT NULL",  # percent, exact decimal text
            "weighted_micros BIGINT NOT NULL",  # amount * probability / 100, to the micro-unit
            "sourcing_partner TEXT",  # the registering partner; NULL for direct deals
            "registration_id TEXT",
            "owner TEXT NOT NULL",
            "region TEXT NOT NULL",
            "expected_close TEXT NOT NULL",
            "opened_at TEXT NOT NULL",
            "stage_entered_at TEXT NOT NULL",
            "closed_at TEXT",
        ),
        ("deal_id",),
        (("status", "stage"),),
    ),
    Table(
        "rm_pipeline_partner",
        "pipeline",
        (
            "deal_id TEXT NOT NULL",
            "partner_code TEXT NOT NULL",
            "role TEXT NOT NULL",
            "share TEXT NOT NULL",  # attribution percent, exact decimal text
            "sourcing INTEGER NOT NULL",  # 1 for the registering partner
        ),
        ("deal_id", "partner_code"),
        (("partner_code",),),
    ),
    # -- attribution ----------------------------------------------------------------
    Table(
        "rm_attribution_partner",
        "attribution",
        (
            "partner_id TEXT NOT NULL",
            "partner_code TEXT NOT NULL",
            "name TEXT NOT NULL",
            "tier TEXT NOT NULL",
            "suspended INTEGER NOT NULL",
        ),
        ("partner_id",),
    ),
    Table(
        "rm_attribution_deal",
        "attribution",
        (
            "deal_id TEXT NOT NULL",
            "status TEXT NOT NULL",
            "amount_micros BIGINT NOT NULL",
            "currency TEXT NOT NULL",
            "sourcing_partner TEXT",
            "opened_at TEXT NOT NULL",
            "closed_at TEXT",
        ),
        ("deal_id",),
    ),
    Table(
        "rm_attribution_share",
        "attribution",
        (
            "deal_id TEXT NOT NULL",
            "partner_code TEXT NOT NULL",
            "sourcing INTEGER NOT NULL",
            "share TEXT NOT NULL",
            "won_micros BIGINT",  # revenue attributed when the deal was won, else NULL
            "won_currency TEXT",
        ),
        ("deal_id", "partner_code"),
        (("partner_code",),),
    ),
    # -- registration queue ---------------------------------------------------------
    Table(
        "rm_registration",
        "registration_queue",
        (
            "registration_id TEXT NOT NULL",
            "partner_code TEXT NOT NULL",
            "customer_name TEXT NOT NULL",
            "customer_domain TEXT NOT NULL",
            "customer_country TEXT NOT NULL",
            "product_line TEXT NOT NULL",
            "conflict_key TEXT NOT NULL",
            "status TEXT NOT NULL",
            "value_micros BIGINT NOT NULL",
            "currency TEXT NOT NULL",
            "expected_close TEXT NOT NULL",
            "review_reasons TEXT NOT NULL",  # comma-separated, sorted; '' when none
            "submitted_at TEXT NOT NULL",
            "status_changed_at TEXT NOT NULL",
            "protected_until TEXT",
            "rejection_reason TEXT",
            "deal_id TEXT",
        ),
        ("registration_id",),
        (("status",), ("conflict_key",)),
    ),
    Table(
        # A table of its own (not a column of rm_registration) so that an existing
        # read-model database gains it without migrating; rebuild to fill it.
        "rm_registration_related",
        "registration_queue",
        (
            "registration_id TEXT NOT NULL",
            "reason TEXT NOT NULL",  # a review reason (key_protected, near_duplicate, ...)
            "related_id TEXT NOT NULL",  # a registration behind that reason
        ),
        ("registration_id", "reason", "related_id"),
    ),
    Table(
        "rm_protection",
        "registration_queue",
        (
            "protection_id TEXT NOT NULL",
            "conflict_key TEXT NOT NULL",
            "holder_registration_id TEXT",
            "holder_partner TEXT",
            "protected_until TEXT",
        ),
        ("protection_id",),
        (("conflict_key",),),
    ),
)

PROJECTION_NAMES: tuple[str, ...] = ("pipeline", "attribution", "registration_queue")


def tables_of(projection: str | None = None) -> tuple[Table, ...]:
    """The read-model tables of one projection, or every table (bookkeeping too)."""
    if projection is None:
        return TABLES
    if projection not in PROJECTION_NAMES:
        raise ValueError(f"unknown projection {projection!r}; known: {PROJECTION_NAMES}")
    return tuple(t for t in TABLES if t.projection == projection)


def dialect_of(connection: Any) -> Dialect:
    return "sqlite" if isinstance(connection, sqlite3.Connection) else "postgres"


class ReadStore:
    """A DB-API connection plus its SQL dialect. Write SQL with ``%s`` placeholders."""

    def __init__(self, connection: Connection, dialect: Dialect | None = None) -> None:
        self.connection = connection
        self.dialect: Dialect = dialect or dialect_of(connection)
        if self.dialect not in ("postgres", "sqlite"):
            raise ValueError(f"unknown dialect {self.dialect!r}")

    def __repr__(self) -> str:
        return f"ReadStore({self.dialect})"

    # -- statements ---------------------------------------------------------------

    def native(self, sql: str) -> str:
        """`sql` in this dialect: ``%s`` becomes ``?`` (and ``%%`` ``%``) on SQLite."""
        if self.dialect == "postgres":
            return sql
        return _PLACEHOLDER.sub(lambda m: "?" if m.group(1) == "s" else "%", sql)

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        cursor = self.connection.cursor()
        cursor.execute(self.native(sql), tuple(params))
        return cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement; returns the affected row count (-1 when not known)."""
        cursor = self._run(sql, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._run(sql, params)
        try:
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        cursor = self._run(sql, params)
        try:
            row = cursor.fetchone()
            return None if row is None else tuple(row)
        finally:
            cursor.close()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None without rows."""
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    # -- schema -------------------------------------------------------------------

    def create_tables(self) -> None:
        """Creates every missing read-model table (idempotent).

        Existing tables are left untouched without issuing DDL: even `IF NOT EXISTS`
        DDL takes locks that deadlock against a running projector's transaction."""
        for table in TABLES:
            if self._exists(table.name):
                continue
            for statement in table.create_sql():
                self.execute(statement)

    def _exists(self, table: str) -> bool:
        if self.dialect == "postgres":
            return self.scalar("SELECT to_regclass(%s) IS NOT NULL", (table,)) is True
        found = self.scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %s", (table,)
        )
        return bool(found)

    def drop_tables(self, projection: str | None = None) -> None:
        """Drops one projection's tables and forgets what was applied to it, or drops
        every read-model table (bookkeeping included) when `projection` is None.
        Call `create_tables()` afterwards to rebuild."""
        if projection is None:
            for table in reversed(TABLES):
                self.execute(f"DROP TABLE IF EXISTS {table.name}")
            return
        for table in tables_of(projection):
            self.execute(f"DROP TABLE IF EXISTS {table.name}")
        for table in tables_of(None):
            if table.projection is None:
                for statement in table.create_sql():
                    self.execute(statement)
        self.execute(f"DELETE FROM {APPLIED_TABLE} WHERE projection = %s", (projection,))
        self.execute(f"DELETE FROM {POSITION_TABLE} WHERE projection = %s", (projection,))


def dump_tables(store: ReadStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows (bookkeeping included), ordered by primary key."""
    return {
        table.name: store.fetchall(
            f"SELECT * FROM {table.name} ORDER BY {', '.join(table.primary_key)}"
        )
        for table in TABLES
    }


# -- value conventions ------------------------------------------------------------------


def to_micros(amount: Decimal) -> int:
    """Exact micro-units of a money amount; refuses finer amounts and BIGINT overflow."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"money amount {amount!r} is not a finite Decimal")
    scaled = amount.scaleb(6)
    micros = int(scaled)
    if micros != scaled:
        raise ValueError(f"money amount {amount} has more than 6 decimals")
    if abs(micros) > _MAX_BIGINT:
        raise ValueError(f"money amount {amount} is too large for the read models")
    return micros


def from_micros(micros: Any, currency: str) -> Decimal:
    """The exact Decimal of `micros`, shown with the currency's minor units when exact
    (180000 USD -> 180000.00), otherwise with every significant digit."""
    exact = Decimal(int(micros)).scaleb(-6)
    shown = exact.quantize(Decimal(1).scaleb(-minor_units(currency)))
    if shown == exact:
        return shown
    return exact.normalize()


def weighted_micros(amount_micros: int, probability: Decimal) -> int:
    """`amount * probability / 100` in micro-units, rounded half-even to the micro-unit."""
    value = Decimal(amount_micros) * probability / 100
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def time_text(moment: datetime) -> str:
    """The stored form of an instant: aware, UTC, fixed microsecond precision."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time {moment!r} must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: Any) -> datetime:
    return datetime.fromisoformat(str(text))


def parse_optional_time(text: Any) -> datetime | None:
    return None if text is None else parse_time(text)


def date_text(day: date) -> str:
    return day.isoformat()


def parse_date(text: Any) -> date:
    return date.fromisoformat(str(text))
