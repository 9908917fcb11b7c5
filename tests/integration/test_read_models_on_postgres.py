"""Invariants I4 and I6 (docs/architecture.md) on PostgreSQL: the batch engine gives the
same read-model rows whatever the batches and re-deliveries, exactly as on SQLite
(tests/property/test_projection_rebuild.py runs the same check there)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings

from projections.read_models import create_tables
from projections.store import ReadStore
from tests.property.test_projection_rebuild import (
    Action,
    actions,
    batch_sizes,
    check_batching_never_matters,
)


@pytest.fixture(scope="module")
def schemas(database_url: str) -> Iterator[Any]:
    made: list[str] = []
    connections: list[psycopg.Connection[Any]] = []

    def new_store() -> tuple[Any, ReadStore]:
        schema = f"rm_{uuid.uuid4().hex[:10]}"
        made.append(schema)
        conn = psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schema}")
        conn.execute(f"CREATE SCHEMA {schema}")
        connections.append(conn)
        store = ReadStore(conn, "postgres")
        with conn.transaction():
            create_tables(store)
        return conn.transaction, store

    yield new_store
    for conn in connections:
        conn.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for schema in made:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@settings(max_examples=int(os.environ.get("DEALLEDGER_PG_PROPERTY_EXAMPLES", "25")))
@given(steps=actions, sizes=batch_sizes)
def test_read_models_on_postgres_are_the_same_whatever_the_batches(
    schemas: Any, steps: list[Action], sizes: list[int]
) -> None:
    check_batching_never_matters(steps, sizes, schemas)
