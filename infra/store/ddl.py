"""Schema changes from several processes at once, one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# Any constant works; it only has to be the same in every Deal Ledger process.
SCHEMA_LOCK = 0x0DEA11ED


@contextmanager
def serialised_ddl(conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[None]:
    """Hold a session advisory lock while creating tables: concurrent `CREATE ... IF
    NOT EXISTS` of one object fails in PostgreSQL with duplicate catalogue rows."""
    conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
