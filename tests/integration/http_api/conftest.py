"""Fixtures of the HTTP API tests: an API on its own PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.http_api.support import Api, close_api, drop_schema, open_api, pg_settings


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    settings = pg_settings(database_url)
    opened = open_api(settings)
    try:
        yield opened
    finally:
        close_api(opened)
        drop_schema(settings)
