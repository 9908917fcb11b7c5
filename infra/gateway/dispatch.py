"""Issuing a command for a principal, whatever carries it (HTTP, the Kafka command
topic): the role gate, the partner scope, the idempotency key scoped to the
principal, building and executing the command, and the answer.

`dispatch` raises `DomainError` (mapped by class, `problems.domain_problem`) or
`InvalidRequest` (422); both carry the stable codes every edge reports.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from fastapi.encoders import jsonable_encoder
from pydantic import ValidationError

from commands import models as m
from commands.ledger import DealLedger
from commands.outcome import Outcome
from domain.errors import DomainError, IdempotencyKeyReused
from domain.ids import command_record_id
from infra.gateway import access
from infra.gateway.principals import Principal, scoped_command_id
from infra.gateway.problems import InvalidRequest, domain_problem
from infra.http.bodies import FROM_ELSEWHERE, without_nul
from infra.http.command_table import COMMAND_ROUTES, CommandRoute
from infra.http.metrics import Metrics
from infra.http.responses import CommandAccepted

# Command type name -> the route (roles, partner scope) it is issued under.
ROUTES_BY_COMMAND: dict[str, CommandRoute] = {}
for _route in COMMAND_ROUTES:
    ROUTES_BY_COMMAND[_route.command.__name__] = _route
# The single-field revisions have no route of their own; they are issued (on the
# command topic) under the gate of the route that revises both.
for _command in (m.ReviseDealAmount, m.ReviseDealCloseDate):
    ROUTES_BY_COMMAND[_command.__name__] = replace(
        ROUTES_BY_COMMAND[m.ReviseDeal.__name__], command=_command
    )


@dataclass(frozen=True)
class Dispatched:
    accepted: CommandAccepted
    replayed: bool  # the command had been handled before: nothing was written
    fields: dict[str, Any]  # the command fields used (partner_code filled in)


def route_for(command_type: str) -> CommandRoute:
    route = ROUTES_BY_COMMAND.get(command_type)
    if route is None:
        raise InvalidRequest(
            [{"loc": ("type",), "msg": f"unknown command type {command_type!r}", "type": "enum"}]
        )
    return route


def dispatch(
    ledger: DealLedger,
    route: CommandRoute,
    principal: Principal,
    fields: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    metrics: Metrics | None = None,
    where: str = "body",
) -> Dispatched:
    """Issues `route`'s command from `fields` (body and path values) as `principal`."""
    access.require_role(principal, route.roles, route.summary)
    if principal.is_partner:
        _partner_scope(ledger, route, principal, fields)
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
        without_nul(fields, where)
    except ValueError as exc:
        raise InvalidRequest([{"loc": (where,), "msg": str(exc), "type": "value_error"}]) from None
    fields = dict(fields)
    if "partner_code" in route.optional and fields.get("partner_code") is None:
        if principal.partner_code is None:
            raise InvalidRequest(
                [
                    {
                        "loc": (where, "partner_code"),
                        "msg": "partner_code is required unless a partner submits for itself",
                        "type": "missing",
                    }
                ]
            )
        fields["partner_code"] = principal.partner_code
    key = idempotency_key or str(uuid.uuid4())
    command_id = scoped_command_id(principal, key)
    command = _build(
        route.command,
        {
            **fields,
            "command_id": command_id,
            "actor": principal.actor_in(),
            "correlation_id": correlation_id,
        },
        where,
    )
    outcome = _execute(ledger, command, metrics)
    position = _original_position(ledger, outcome) if outcome.replayed else outcome.position
    accepted = CommandAccepted(
        command_id=key,
        command_type=outcome.command_type,
        aggregate_id=str(outcome.aggregate_id) if outcome.aggregate_id else None,
        position=position or 0,
        result=jsonable_encoder(outcome.result),
    )
    return Dispatched(accepted, outcome.replayed, fields)


def _partner_scope(
    ledger: DealLedger, route: CommandRoute, principal: Principal, fields: dict[str, Any]
) -> None:
    """Another partner's resource answers exactly like a missing one (404)."""
    if route.scope == "registration":
        access.registration_for(ledger, principal, _uuid(fields, "registration_id"))
    elif route.scope == "deal":
        access.deal_for(ledger, principal, _uuid(fields, "deal_id"))


def _uuid(fields: dict[str, Any], name: str) -> uuid.UUID:
    value = fields.get(name)
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidRequest(
            [{"loc": (name,), "msg": f"{name} must be a UUID", "type": "uuid_parsing"}]
        ) from None


def _build(cls: type[m.Command], fields: dict[str, Any], where: str) -> m.Command:
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise InvalidRequest(
            [{**e, "loc": (where, *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None


def _execute(ledger: DealLedger, command: m.Command, metrics: Metrics | None) -> Outcome:
    started = time.perf_counter()
    label = "error"
    try:
        outcome = ledger.execute(command)
        if outcome.replayed and outcome.command_type != command.type_name:
            raise IdempotencyKeyReused(
                "this idempotency key was already used for a different command",
                command_type=outcome.command_type,
            )
        label = "replayed" if outcome.replayed else "accepted"
        return outcome
    except DomainError as exc:
        label = domain_problem(exc)[0]
        raise
    finally:
        if metrics is not None:
            metrics.command(command.type_name, label, time.perf_counter() - started)


def _original_position(ledger: DealLedger, outcome: Outcome) -> int | None:
    """Where the first handling of a command id wrote (its record is saved last)."""
    from infra.audit.store import AuditStore

    try:
        store = AuditStore(ledger)
    except TypeError:  # a ledger without the auditing recorder
        return outcome.position
    first = next(store.stream(command_record_id(outcome.command_id)), None)
    return first.position if first is not None else outcome.position
