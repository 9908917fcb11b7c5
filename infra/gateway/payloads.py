"""Commands built from a caller's fields, whatever carried them (an HTTP body and
path, a Kafka envelope's payload, a form).

The caller names only the command's own fields: `command_id` comes from its
idempotency key, `actor` from its principal and `correlation_id` from the
transport. Every problem is an `InvalidRequest` whose pydantic-style errors are
located under `where` (``body``, ``payload``), so each edge can point at the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from commands import models as m
from commands.models import nul_at
from infra.gateway.problems import InvalidRequest

FROM_ELSEWHERE = ("command_id", "actor", "correlation_id")


def without_nul(value: Any, where: str = "body") -> None:
    """Raises ValueError naming where a NUL character is (PostgreSQL text holds none)."""
    found = nul_at(value, where)
    if found is not None:
        raise ValueError(f"{found} contains a NUL character")


def check_fields(fields: Mapping[str, Any], where: str) -> None:
    """Refuses fields the caller may not name, and NUL characters anywhere."""
    named = [name for name in FROM_ELSEWHERE if name in fields]
    if named:
        raise InvalidRequest(
            [
                {"loc": (where, name), "msg": f"{name} comes from the caller, not the payload",
                 "type": "extra_forbidden"}
                for name in named
            ]
        )  # fmt: skip
    try:
        without_nul(dict(fields), where)
    except ValueError as exc:
        raise InvalidRequest([{"loc": (where,), "msg": str(exc), "type": "value_error"}]) from None


def build(command: type[m.Command], fields: Mapping[str, Any], where: str) -> m.Command:
    try:
        return command(**fields)
    except ValidationError as exc:
        raise InvalidRequest(
            [{**e, "loc": (where, *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None


def missing(where: str, name: str, why: str) -> InvalidRequest:
    return InvalidRequest([{"loc": (where, name), "msg": why, "type": "missing"}])
