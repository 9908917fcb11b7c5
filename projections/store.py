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

Every read-model table is keyed by the id of the one aggregate whose events make its
rows (`Table.key`), so the batch engine (projections.engine) can read, replace and
write the rows of many aggregates with one statement per table.

`ReadStore` never commits or rolls back: the caller owns the transaction (psycopg
``with conn.transaction():``, sqlite3 ``with conn:``), because the consumer stores
its Kafka offsets in that same transaction.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, Protocol

from psycopg import ClientCursor

from domain.currencies import minor_units

Dialect = Literal["postgres", "sqlite"]

MICROS = 10**6
_MAX_BIGINT = 2**63 - 1
_PLACEHOLDER = re.compile(r"%([s%])")
# SQLite binds at most 32,766 values per statement; stay well below.
_SQLITE_CHUNK = 500
# Below this many rows one multi-row INSERT beats a COPY round trip.
COPY_FROM = 64

POSITION_TABLE = "rm_position"


class Connection(Protocol):
    """The part of a DB-API connection the store uses (psycopg 3 and sqlite3 both fit)."""

    def cursor(self) -> Any: ...


@dataclass(frozen=True)
class Table:
    """One read-model table. `key` is the column holding the id of the aggregate whose
    events make the row (`aggregate` names its type); it leads the primary key."""

    name: str
    aggregate: str | None  # None: bookkeeping shared by the engine
    columns: tuple[str, ...]  # column definitions, in order
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def key(self) -> str:
        return self.primary_key[0]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.split()[0] for column in self.columns)

    def named(self, name: str) -> Table:
        return Table(name, self.aggregate, self.columns, self.primary_key, self.indexes)

    def create_sql(self) -> list[str]:
        body = ",\n    ".join([*self.columns, f"PRIMARY KEY ({', '.join(self.primary_key)})"])
        statements = [f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"]
        for columns in self.indexes:
            index = f"{self.name}_by_{'_'.join(columns)}"
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {index} ON {self.name} ({', '.join(columns)})"
            )
        return statements


#: The highest ledger position each projection has applied (its freshness).
POSITIONS = Table(
    POSITION_TABLE,
    None,
    ("projection TEXT NOT NULL", "position BIGINT NOT NULL"),
    ("projection",),
)


def dialect_of(connection: Any) -> Dialect:
    return "sqlite" if isinstance(connection, sqlite3.Connection) else "postgres"


class ReadStore:
    """A DB-API connection plus its SQL dialect. Write SQL with ``%s`` placeholders."""

    def __init__(self, connection: Connection, dialect: Dialect | None = None) -> None:
        self.connection = connection
        self.dialect: Dialect = dialect or dialect_of(connection)
        if self.dialect not in ("postgres", "sqlite"):
            raise ValueError(f"unknown dialect {self.dialect!r}")
        # Statements held back by `pipelined()`, to go out together.
        self._script: list[tuple[str, Sequence[Any]]] | None = None

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
        """Runs one statement; returns the affected row count (-1 when not known, as
        for a statement held back by `pipelined()`)."""
        if self._script is not None:
            self._script.append((sql, tuple(params)))
            return -1
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

    # -- many aggregates at once ----------------------------------------------------

    def _chunks(self, ids: Sequence[str]) -> Iterable[Sequence[str]]:
        if self.dialect == "postgres":
            yield ids
            return
        for start in range(0, len(ids), _SQLITE_CHUNK):
            yield ids[start : start + _SQLITE_CHUNK]

    def _in(self, column: str, ids: Sequence[str]) -> tuple[str, list[Any]]:
        if self.dialect == "postgres":
            return f"{column} = ANY(%s)", [list(ids)]
        return f"{column} IN ({', '.join('?' * len(ids))})", list(ids)

    def select_in(
        self, table: str, columns: Sequence[str], key: str, ids: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """The rows of `table` whose `key` is one of `ids` (one statement on PostgreSQL)."""
        rows: list[tuple[Any, ...]] = []
        for chunk in self._chunks(ids):
            where, params = self._in(key, chunk)
            cursor = self.connection.cursor()
            try:
                cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}", params)
                rows.extend(tuple(row) for row in cursor.fetchall())
            finally:
                cursor.close()
        return rows

    def select_many(
        self, queries: Sequence[tuple[str, Sequence[str], str, Sequence[str]]]
    ) -> list[list[tuple[Any, ...]]]:
        """`select_in` for each (table, columns, key, ids), all sent in one round trip on
        PostgreSQL together with any statements `pipelined()` holds back; the rows of
        each, in order."""
        if self.dialect == "sqlite":
            return [self.select_in(*query) for query in queries]
        held, self._script = self._script, ([] if self._script is not None else None)
        script = [
            *(held or ()),
            *(
                (f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ANY(%s)", [list(ids)])
                for table, columns, key, ids in queries
            ),
        ]
        results = self._send_script(script)
        return results[len(script) - len(queries) :]

    def _send_script(
        self, script: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[tuple[Any, ...]]]:
        """Runs the statements as one simple query (parameters bound on the client), in
        one round trip however many; the rows each returned (none for a command)."""
        if not script:
            return []
        cursor = ClientCursor(self.connection)  # type: ignore[call-overload]
        try:
            cursor.execute(
                "; ".join(sql for sql, _ in script), [p for _, params in script for p in params]
            )
            results: list[list[tuple[Any, ...]]] = []
            while True:
                results.append([tuple(r) for r in cursor.fetchall()] if cursor.description else [])
                if not cursor.nextset():
                    return results
        finally:
            cursor.close()

    @contextmanager
    def pipelined(self, *, when: bool = True) -> Iterator[None]:
        """On PostgreSQL (and `when`), the statements of the block (of `execute` and the
        row methods below) are held back and go out together at its end, in one round
        trip; a database error surfaces there. `select_many` takes the held statements
        with it. Inside an enclosing `pipelined()` it adds nothing. Rows go by INSERT,
        never COPY, in the block."""
        if self.dialect != "postgres" or not when or self._script is not None:
            yield
            return
        self._script = []
        try:
            yield
            script = self._script
        finally:
            self._script = None
        self._send_script(script)

    @property
    def in_pipeline(self) -> bool:
        """Whether `pipelined()` is holding statements back."""
        return self._script is not None

    def delete_in(self, table: str, key: str, ids: Sequence[str]) -> None:
        for chunk in self._chunks(ids):
            where, params = self._in(key, chunk)
            self.execute(f"DELETE FROM {table} WHERE {where}", params)

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Inserts `rows` (tuples in `columns` order): COPY on PostgreSQL when they are
        many, one multi-row INSERT when few; executemany on SQLite."""
        if not rows:
            return
        names = ", ".join(columns)
        cursor = self.connection.cursor()
        try:
            if self.dialect == "sqlite":
                marks = ", ".join("?" * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            elif len(rows) >= COPY_FROM and not self.in_pipeline:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                one = "(" + ", ".join(["%s"] * len(columns)) + ")"
                self.execute(
                    f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(rows))}",
                    [value for row in rows for value in row],
                )
        finally:
            cursor.close()

    def upsert_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        types: Sequence[str],
        keep_greater: str | None = None,
    ) -> None:
        """Inserts `rows`, replacing on a primary-key conflict (the first column is the
        key); with `keep_greater`, that column never moves down. `types` are the
        columns' SQL types: on PostgreSQL the rows go as one array per column, so the
        statement has as many parameters as columns, however many rows."""
        if not rows:
            return
        names = ", ".join(columns)
        key, rest = columns[0], columns[1:]
        updates = ", ".join(
            f"{c} = CASE WHEN excluded.{c} > {table}.{c} THEN excluded.{c} ELSE {table}.{c} END"
            if c == keep_greater
            else f"{c} = excluded.{c}"
            for c in rest
        )
        conflict = f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        cursor = self.connection.cursor()
        try:
            if self.dialect == "sqlite":
                marks = ", ".join("?" * len(columns))
                cursor.executemany(
                    f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}", rows
                )
            else:
                arrays = ", ".join(f"%s::{kind}[]" for kind in types)
                self.execute(
                    f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {conflict}",
                    [list(column) for column in zip(*rows, strict=True)],
                )
        finally:
            cursor.close()

    # -- schema -------------------------------------------------------------------

    def create_tables(self, tables: Iterable[Table]) -> None:
        """Creates every missing table of `tables` (idempotent).

        Existing tables are left untouched without issuing DDL: even `IF NOT EXISTS`
        DDL takes locks that deadlock against a running projector's transaction."""
        for table in tables:
            if self.exists(table.name):
                continue
            for statement in table.create_sql():
                self.execute(statement)

    def exists(self, table: str) -> bool:
        if self.dialect == "postgres":
            return self.scalar("SELECT to_regclass(%s) IS NOT NULL", (table,)) is True
        found = self.scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %s", (table,)
        )
        return bool(found)

    def drop_tables(self, tables: Iterable[Table]) -> None:
        for table in tables:
            self.execute(f"DROP TABLE IF EXISTS {table.name}")

    def rename_table(self, old: str, new: str) -> None:
        self.execute(f"ALTER TABLE {old} RENAME TO {new}")
        if self.dialect == "postgres":
            # Index names follow their table, so a shadow's indexes become the live ones.
            for (index,) in self.fetchall(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s "
                "AND schemaname = current_schema()",
                (new,),
            ):
                if index.startswith(f"{old}_"):
                    self.execute(f"ALTER INDEX {index} RENAME TO {new}_{index[len(old) + 1 :]}")


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
