"""Property-based checks of the whole API against its own OpenAPI document.

Schemathesis generates requests for every operation (valid and invalid ones) and
sends them with an admin key: no answer may be a 5xx, and every answer must match
the documented status codes, content types, headers and schemas. Bounded so the
file runs in well under two minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infra.http import create_app
from infra.settings import Settings
from tests.integration.http_api.support import (
    Api,
    close_api,
    convert,
    drop_schema,
    ok,
    onboard,
    open_api,
    pg_settings,
    submit,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 30
# Schemathesis' own generators touch the `random` module; nothing of ours does.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


@dataclass(frozen=True)
class Served:
    api: Api
    known: dict[str, str]  # path parameter -> an existing resource


@pytest.fixture(scope="module")
def served(database_url: str) -> Iterator[Served]:
    settings_ = pg_settings(database_url, api_read_wait_seconds=0.05)
    api = open_api(settings_)
    try:
        onboard(api, "acme", "globex")
        deal = convert(api, submit(api, "acme", "umbrella.example")["aggregate_id"])
        support = ok(api.post("sales", f"/v1/deals/{deal}/support", {"kind": "legal"}))
        review = submit(api, "globex", "initech.example", amount="900000")["aggregate_id"]
        known = {
            "deal_id": deal,
            "registration_id": review,
            "partner_code": "globex",
            "request_id": support["result"]["request_id"],
        }
        yield Served(api, known)
    finally:
        close_api(api)
        drop_schema(settings_)


def _operations() -> list[tuple[str, str]]:
    """Every documented operation, read from a document built without any database."""
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    document = app.openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    )


OPERATIONS = _operations()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    served: Served, method: str, path: str
) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", served.api.app)[path][method]
    known = {k: v for k, v in served.known.items() if f"{{{k}}}" in path}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        # Real resources too, so commands reach the domain and change state.
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known),
    )
    headers = served.api.headers("admin")

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
