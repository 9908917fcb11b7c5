"""The command gateway: one call issues a command for a principal, whatever the
edge (HTTP, the Kafka command topic, a later web page).

`Gateway.issue(principal, command_type, fields, idempotency_key=…, correlation_id=…)`
gates the principal's role (`policy.POLICIES`), keeps a partner to its own
resources (another partner's answers like a missing one: 404 `not_found`), fills
what a partner leaves out to mean itself, scopes the idempotency key to the
principal, builds the command from the fields, executes it on the ledger and
answers `Accepted`. It refuses by raising a `problems.Refused` error (a
`DomainError`, `InvalidRequest` or `Unauthenticated`); `problems.refusal` maps
each onto the stable code and status every edge reports.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from commands import models as m
from commands.ledger import DealLedger
from commands.outcome import Outcome
from domain.errors import DomainError, IdempotencyKeyReused
from domain.ids import command_record_id
from infra.audit.store import AuditStore
from infra.gateway import access, payloads
from infra.gateway.policy import CommandPolicy, policy_for
from infra.gateway.principals import Authenticator, Principal, scoped_command_id
from infra.gateway.problems import InvalidRequest, domain_problem


class CommandMetrics(Protocol):
    def command(self, command_type: str, outcome: str, seconds: float) -> None:
        """One command executed: `outcome` is accepted, replayed or the problem code."""


@dataclass(frozen=True)
class Accepted:
    """A command the ledger accepted (now, or before: `replayed`)."""

    command_id: str  # the caller's idempotency key (generated when it gave none)
    command_type: str
    aggregate_id: str | None
    position: int  # where the command's events were written (its first handling)
    result: dict[str, Any]  # JSON-safe
    replayed: bool  # the command had been handled before: nothing was written
    fields: dict[str, Any]  # the command fields used (a partner's own code filled in)


class Gateway:
    """Authenticates principals and issues their commands on the ledger.

    `ledger` is called for the write side on each use, so a process starts while the
    database is away; `metrics`, when given, times each command the ledger executes.
    """

    def __init__(
        self,
        ledger: Callable[[], DealLedger],
        authenticator: Authenticator,
        *,
        metrics: CommandMetrics | None = None,
    ) -> None:
        self._ledger = ledger
        self.authenticator = authenticator
        self.metrics = metrics

    # -- who is calling ----------------------------------------------------------------

    def authenticate(self, presented: str | None) -> Principal:
        """The principal of a full key ``dl_<id>_<secret>``; raises Unauthenticated."""
        return self.authenticator.authenticate(presented)

    def principal_for_key_id(self, key_id: str) -> Principal:
        """For a trusted channel that names a key without its secret."""
        return self.authenticator.principal_for_key_id(key_id)

    # -- issuing ------------------------------------------------------------------------

    def issue(
        self,
        principal: Principal,
        command_type: str,
        fields: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        where: str = "body",
    ) -> Accepted:
        """Issues `command_type` from `fields` as `principal`; `where` names the fields'
        place in the caller's message, for the locations of invalid values."""
        policy = policy_for(command_type)
        ledger = self._ledger()
        access.require_role(principal, policy.roles, policy.doing)
        if principal.is_partner:
            _partner_scope(ledger, policy, principal, fields)
        payloads.check_fields(fields, where)
        used = _self_filled(policy, principal, fields, where)
        key = idempotency_key or str(uuid.uuid4())
        command = payloads.build(
            policy.command,
            {
                **used,
                "command_id": scoped_command_id(principal, key),
                "actor": principal.actor_in(),
                "correlation_id": correlation_id,
            },
            where,
        )
        outcome = self._execute(ledger, command)
        position = _original_position(ledger, outcome) if outcome.replayed else outcome.position
        return Accepted(
            command_id=key,
            command_type=outcome.command_type,
            aggregate_id=str(outcome.aggregate_id) if outcome.aggregate_id else None,
            position=position or 0,
            result=to_jsonable_python(outcome.result),
            replayed=outcome.replayed,
            fields=used,
        )

    def _execute(self, ledger: DealLedger, command: m.Command) -> Outcome:
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
            if self.metrics is not None:
                self.metrics.command(command.type_name, label, time.perf_counter() - started)


def _partner_scope(
    ledger: DealLedger, policy: CommandPolicy, principal: Principal, fields: Mapping[str, Any]
) -> None:
    """Another partner's resource answers exactly like a missing one (404)."""
    if policy.scope == "registration":
        access.registration_for(ledger, principal, _uuid(fields, "registration_id"))
    elif policy.scope == "deal":
        access.deal_for(ledger, principal, _uuid(fields, "deal_id"))


def _self_filled(
    policy: CommandPolicy, principal: Principal, fields: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """`fields`, with what a partner left out to mean itself filled in."""
    used = dict(fields)
    for name in policy.self_filled:
        if used.get(name) is not None:
            continue
        if principal.partner_code is None:
            raise payloads.missing(
                where, name, f"{name} is required unless a partner submits for itself"
            )
        used[name] = principal.partner_code
    return used


def _uuid(fields: Mapping[str, Any], name: str) -> uuid.UUID:
    value = fields.get(name)
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidRequest(
            [{"loc": (name,), "msg": f"{name} must be a UUID", "type": "uuid_parsing"}]
        ) from None


def _original_position(ledger: DealLedger, outcome: Outcome) -> int | None:
    """Where the first handling of a command id wrote (its record is saved last)."""
    try:
        store = AuditStore(ledger)
    except TypeError:  # a ledger without the auditing recorder
        return outcome.position
    first = next(store.stream(command_record_id(outcome.command_id)), None)
    return first.position if first is not None else outcome.position
