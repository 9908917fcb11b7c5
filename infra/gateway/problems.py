"""RFC 9457 problem details: every refusal an edge gives, with a stable `code`.

One catalogue for every transport: the HTTP API answers with these bodies, and the
Kafka command topic's results carry the same ones. A refusal maps onto its code and
status by what it is (a domain error's class code, a bad key, invalid values);
nothing parses message text. Bodies hold ``type``, ``title``, ``status``,
``detail``, ``code`` and ``instance``; validation problems list each error, and
domain errors carry their details as extension members. HTTP specifics (headers,
responses) live in `infra.http`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout, TooManyRequests
from pydantic import BaseModel, ConfigDict, Field

from domain.errors import DomainError
from infra.gateway.principals import Unauthenticated

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    code: str
    status: int
    title: str
    description: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    p.code: p
    for p in (
        ProblemType(
            "malformed_request",
            400,
            "Malformed request",
            "The body is not JSON or a header is "
            "malformed (for example an Idempotency-Key over 100 characters).",
        ),
        ProblemType(
            "unauthenticated",
            401,
            "Unauthenticated",
            "No API key, or one that is malformed, "
            "unknown or revoked. Send `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        ),
        ProblemType(
            "forbidden",
            403,
            "Forbidden",
            "The caller's role may not do this, whatever the resource.",
        ),
        ProblemType(
            "not_found",
            404,
            "Not found",
            "No such resource, or one the caller may not see "
            "(partners get 404, never 403, for other partners' resources).",
        ),
        ProblemType("method_not_allowed", 405, "Method not allowed", "Use another method."),
        ProblemType(
            "illegal_transition",
            409,
            "Illegal transition",
            "The resource's current state does not allow this command.",
        ),
        ProblemType(
            "channel_conflict",
            409,
            "Channel conflict",
            "Another partner holds channel protection for this customer and product line.",
        ),
        ProblemType(
            "partner_suspended",
            409,
            "Partner suspended",
            "A suspended partner cannot do this.",
        ),
        ProblemType(
            "protected_partner",
            409,
            "Protected partner",
            "The protected sourcing partner cannot be removed while its protection lasts.",
        ),
        ProblemType(
            "idempotency_key_reused",
            409,
            "Idempotency key reused",
            "This Idempotency-Key was already used for a different request; use a new key.",
        ),
        ProblemType(
            "concurrent_modification",
            409,
            "Concurrent modification",
            "Others kept changing the same resources; retry with the same Idempotency-Key.",
        ),
        ProblemType(
            "invalid_input",
            422,
            "Invalid input",
            "The request is well-formed but its values are not valid; `errors` lists each one.",
        ),
        ProblemType(
            "invalid_attribution",
            422,
            "Invalid attribution",
            "Attribution shares must be "
            "exact, non-negative and sum to 100 over the attached partners.",
        ),
        ProblemType(
            "internal_error",
            500,
            "Internal error",
            "An unexpected error; it has been logged with this problem's correlation id.",
        ),
        ProblemType(
            "database_unavailable",
            503,
            "Database unavailable",
            "The database cannot be reached; retry after the Retry-After delay.",
        ),
        ProblemType(
            "read_model_behind",
            503,
            "Read model behind",
            "The read model had not reached "
            "`min_position` within the wait; retry after the Retry-After delay.",
        ),
    )
}

_RESERVED = {"type", "title", "status", "detail", "instance", "code", "errors"}


class InvalidRequest(Exception):
    """Values a command cannot be built from (422 `invalid_input`, with `errors`).

    `errors` are pydantic-style dicts: ``loc`` (a tuple), ``msg`` and ``type``."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__("; ".join(str(e.get("msg", "")) for e in errors))
        self.errors = [dict(e) for e in errors]


class ProblemError(BaseModel):
    loc: list[str | int]
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem; extension members may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI reference naming the problem type: /problems/{code}")
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable code")
    instance: str = Field(description="the request path this occurrence belongs to")
    errors: list[ProblemError] | None = Field(
        default=None, description="each invalid value (validation problems only)"
    )


def problem_type_uri(code: str) -> str:
    return f"/problems/{code}"


def problem_body(
    code: str,
    detail: str,
    instance: str,
    *,
    status: int | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    kind = PROBLEM_TYPES.get(code)
    body: dict[str, Any] = {
        "type": problem_type_uri(code),
        "title": kind.title if kind else code.replace("_", " ").capitalize(),
        "status": status if status is not None else (kind.status if kind else 400),
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = [dict(e) for e in errors]
    for name, value in (extensions or {}).items():
        if name not in _RESERVED:
            body[name] = _json_safe(value)
    return body


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def domain_problem(error: DomainError) -> tuple[str, int]:
    """The code and status of a domain refusal: its class's code (a subclass keeps
    its parent's unless it names its own); a code outside the catalogue is a 400."""
    kind = PROBLEM_TYPES.get(error.code)
    return error.code, kind.status if kind else 400


def validation_errors(raw: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[dict[str, Any]]:
    """Pydantic-style errors reduced to loc, message and type (no echoed input)."""
    out = []
    for error in raw:
        loc = [*prefix, *(p if isinstance(p, int) else str(p) for p in error.get("loc", ()))]
        out.append(
            {"loc": loc, "message": str(error.get("msg", "")), "type": str(error.get("type", ""))}
        )
    return out


@dataclass(frozen=True)
class Refusal:
    """A refusal as every transport reports it: code, status, detail and members."""

    code: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None  # reduced by `validation_errors`
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def body(self, instance: str) -> dict[str, Any]:
        return problem_body(
            self.code,
            self.detail,
            instance,
            status=self.status,
            errors=self.errors,
            extensions=self.extensions,
        )


# What the gateway raises when it refuses; `refusal` maps each onto its problem.
Refused = DomainError | InvalidRequest | Unauthenticated


def invalid_values(errors: list[dict[str, Any]]) -> Refusal:
    """422 `invalid_input` listing `errors` (already reduced by `validation_errors`)."""
    count = len(errors)
    return Refusal(
        "invalid_input",
        PROBLEM_TYPES["invalid_input"].status,
        f"{count} invalid value{'s' if count != 1 else ''}: "
        + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['message']}" for e in errors[:5]),
        errors=errors,
    )


def refusal(error: Refused) -> Refusal:
    if isinstance(error, InvalidRequest):
        return invalid_values(validation_errors(error.errors))
    if isinstance(error, Unauthenticated):
        return Refusal(error.code, PROBLEM_TYPES[error.code].status, error.message)
    code, status = domain_problem(error)
    return Refusal(code, status, error.message, extensions=error.details)


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection-level failures of PostgreSQL or SQLite (503), not SQL mistakes (500)."""
    if isinstance(exc, psycopg.OperationalError | PoolTimeout | TooManyRequests):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "unable to open" in text or "disk i/o" in text
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_database_unavailable(cause)
