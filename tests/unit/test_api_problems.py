from __future__ import annotations

import sqlite3

import psycopg
import pytest
from eventsourcing.persistence import OperationalError as StoreOperationalError
from psycopg_pool import PoolTimeout

from domain import errors
from infra.gateway.problems import (
    PROBLEM_TYPES,
    domain_problem,
    is_database_unavailable,
    problem_body,
    validation_errors,
)
from infra.http.app import is_malformed

EXPECTED = {
    errors.InvalidInput: (422, "invalid_input"),
    errors.NotFound: (404, "not_found"),
    errors.IllegalTransition: (409, "illegal_transition"),
    errors.ChannelConflict: (409, "channel_conflict"),
    errors.PartnerNotInGoodStanding: (409, "partner_suspended"),
    errors.ProtectedPartnerRequired: (409, "protected_partner"),
    errors.InvalidAttribution: (422, "invalid_attribution"),
    errors.Forbidden: (403, "forbidden"),
    errors.IdempotencyKeyReused: (409, "idempotency_key_reused"),
    errors.ConcurrentModification: (409, "concurrent_modification"),
}


def test_every_domain_error_class_has_a_status_and_keeps_its_stable_code() -> None:
    declared = set(errors.DomainError.__subclasses__())

    assert declared == set(EXPECTED)
    for cls, (status, code) in EXPECTED.items():
        assert domain_problem(cls("refused")) == (code, status)
        assert cls.code == code
        assert PROBLEM_TYPES[code].status == status


def test_a_domain_error_subclass_maps_like_its_parent_and_an_unknown_one_is_a_400() -> None:
    class Stale(errors.IllegalTransition):
        pass

    class Novel(errors.DomainError):
        code = "novel"

    assert domain_problem(Stale("x")) == ("illegal_transition", 409)
    assert domain_problem(Novel("x")) == ("novel", 400)


def test_a_problem_body_has_the_rfc_9457_members_and_keeps_extensions_off_reserved_names() -> None:
    body = problem_body(
        "channel_conflict",
        "umbrella.example|analytics is protected",
        "/v1/deals",
        extensions={"conflict_key": "umbrella.example|analytics", "status": 200, "n": object()},
    )

    assert body["type"] == "/problems/channel_conflict"
    assert (body["title"], body["status"], body["code"]) == (
        "Channel conflict",
        409,
        "channel_conflict",
    )
    assert (body["detail"], body["instance"]) == (
        "umbrella.example|analytics is protected",
        "/v1/deals",
    )
    assert body["conflict_key"] == "umbrella.example|analytics"
    assert isinstance(body["n"], str)


def test_validation_errors_keep_location_message_and_type_but_never_the_input() -> None:
    raw = [{"loc": ("body", "amount"), "msg": "bad", "type": "decimal_parsing", "input": "x"}]

    assert validation_errors(raw) == [
        {"loc": ["body", "amount"], "message": "bad", "type": "decimal_parsing"}
    ]


def test_unreadable_json_and_bad_headers_are_400_while_bad_values_are_422() -> None:
    assert is_malformed([{"loc": ["body", 1], "type": "json_invalid", "message": ""}])
    assert is_malformed([{"loc": ["header", "Idempotency-Key"], "type": "x", "message": ""}])
    assert not is_malformed([{"loc": ["body", "amount"], "type": "x", "message": ""}])
    assert not is_malformed([])


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("connection refused"),
        PoolTimeout("no connection"),
        StoreOperationalError("server closed the connection"),
        sqlite3.OperationalError("database is locked"),
    ],
)
def test_connection_failures_count_as_the_database_being_unavailable(exc: Exception) -> None:
    assert is_database_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [sqlite3.OperationalError("no such table: x"), RuntimeError("bug"), KeyError("x")],
)
def test_programming_mistakes_do_not_count_as_the_database_being_unavailable(
    exc: Exception,
) -> None:
    assert not is_database_unavailable(exc)
