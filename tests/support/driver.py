"""One way for tests to issue commands: built with a fresh command id, as an actor,
executed through `DealLedger.execute` (the one way to change state).

Tests at the HTTP edge keep their own HTTP-shaped client
(tests/integration/http_api/support.py) but act as the same actors (tests/support/actors.py).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from commands.ledger import DealLedger
from commands.models import (
    ApproveRegistration,
    Command,
    ConvertRegistration,
    CustomerIn,
    MoneyIn,
    OnboardPartner,
    OpenDeal,
    SubmitRegistration,
)
from commands.outcome import Outcome
from commands.unit_of_work import LedgerPolicy
from domain.clock import Clock
from domain.errors import DomainError
from domain.values import Actor
from tests.support.actors import MANAGER, SALES, as_command_actor, partner

C = TypeVar("C", bound=Command)


def customer(domain: str, name: str | None = None, country: str = "GB") -> CustomerIn:
    """A customer named after its domain unless a name is given."""
    return CustomerIn(name=name or domain.split(".")[0].title(), domain=domain, country=country)


def money(amount: str | int | Decimal, currency: str = "USD") -> MoneyIn:
    return MoneyIn(amount=Decimal(str(amount)), currency=currency)


def in_memory_ledger(
    clock: Clock, policy: LedgerPolicy | None = None, snapshot_interval: int = 100
) -> DealLedger:
    """A ledger on the library's in-memory (POPO) store: no files, no servers."""
    return DealLedger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        clock=clock,
        policy=policy,
        snapshot_interval=snapshot_interval,
    )


def submission(
    partner_code: str,
    domain: str,
    *,
    command_id: str,
    expected_close: date,
    name: str | None = None,
    product: str = "Analytics",
    amount: str | int | Decimal = "1000",
    currency: str = "USD",
    country: str = "GB",
    actor: Actor | None = None,
) -> SubmitRegistration:
    """`partner_code` registers `domain`, acting for itself unless `actor` is given."""
    return SubmitRegistration(
        command_id=command_id,
        actor=as_command_actor(actor or partner(partner_code)),
        partner_code=partner_code,
        customer=customer(domain, name, country),
        product_line=product,
        estimated_value=money(amount, currency),
        expected_close=expected_close,
    )


class Driver:
    """Builds and executes commands against one ledger, each with a unique command id:
    `prefix-1`, `prefix-2`, ... (two drivers writing to one store need two prefixes)."""

    def __init__(self, ledger: DealLedger, prefix: str = "cmd") -> None:
        self.ledger = ledger
        self.prefix = prefix
        self.issued = 0

    @property
    def now(self) -> datetime:
        return self.ledger.clock.now()

    def next_id(self) -> str:
        self.issued += 1
        return f"{self.prefix}-{self.issued}"

    def close_date(self, days: int = 180) -> date:
        """An expected close date `days` ahead of the ledger's clock (dates before today
        are refused, and test clocks run for years)."""
        return (self.now + timedelta(days=days)).date()

    # -- any command ------------------------------------------------------------

    def command(
        self, command_type: type[C], actor: Actor, /, command_id: str | None = None, **fields: Any
    ) -> C:
        """A command of `command_type` issued by `actor`, with a fresh id unless given."""
        return command_type(
            command_id=command_id or self.next_id(), actor=as_command_actor(actor), **fields
        )

    def run(self, command_type: type[Command], actor: Actor, /, **fields: Any) -> Outcome:
        """Execute a new command; a refusal propagates as its DomainError."""
        return self.ledger.execute(self.command(command_type, actor, **fields))

    def created(self, command_type: type[Command], actor: Actor, /, **fields: Any) -> UUID:
        """Execute a new command and return the aggregate it created or changed."""
        outcome = self.run(command_type, actor, **fields)
        assert outcome.aggregate_id is not None, outcome
        return outcome.aggregate_id

    def attempt(self, command: Command) -> Outcome | DomainError:
        """Execute `command`, returning its refusal instead of raising it."""
        try:
            return self.ledger.execute(command)
        except DomainError as refusal:
            return refusal

    def refusal(self, command_type: type[Command], actor: Actor, /, **fields: Any) -> DomainError:
        """Execute a new command that must be refused; returns the refusal."""
        result = self.attempt(self.command(command_type, actor, **fields))
        if isinstance(result, Outcome):
            raise AssertionError(f"{command_type.__name__} was accepted: {result}")
        return result

    # -- the usual steps, with defaults a test may override ------------------------

    def onboard(self, *codes: str, **fields: Any) -> None:
        for code in codes:
            self.run(OnboardPartner, MANAGER, partner_code=code, name=code.title(), **fields)

    def submission(
        self, partner_code: str, domain: str = "umbrella.example", **fields: Any
    ) -> SubmitRegistration:
        """`partner_code` registers `domain` (see `submission` for the fields), under a
        fresh command id and by default expected to close 180 days from now."""
        fields["command_id"] = fields.get("command_id") or self.next_id()
        fields["expected_close"] = fields.get("expected_close") or self.close_date()
        return submission(partner_code, domain, **fields)

    def submit(self, partner_code: str, domain: str = "umbrella.example", **kw: Any) -> Outcome:
        return self.ledger.execute(self.submission(partner_code, domain, **kw))

    def registered(self, partner_code: str, domain: str = "umbrella.example", **kw: Any) -> UUID:
        """Submit and return the new registration's id."""
        outcome = self.submit(partner_code, domain, **kw)
        assert outcome.aggregate_id is not None, outcome
        return outcome.aggregate_id

    def approve(self, registration_id: UUID) -> Outcome:
        return self.run(ApproveRegistration, MANAGER, registration_id=registration_id)

    def convert(self, registration_id: UUID, **fields: Any) -> UUID:
        """Sales turns the registration into a deal; returns the deal's id."""
        body = {"title": "Converted deal", "owner": "sam", **fields}
        return self.created(ConvertRegistration, SALES, registration_id=registration_id, **body)

    def open_deal(
        self,
        domain: str = "initech.example",
        *,
        name: str | None = None,
        product: str = "Analytics",
        amount: str | int | Decimal = "5000",
        currency: str = "USD",
        **fields: Any,
    ) -> UUID:
        """Sales opens a direct deal; returns its id."""
        body = {
            "title": f"Direct {domain}",
            "owner": "sam",
            "expected_close": self.close_date(),
            **fields,
        }
        return self.created(
            OpenDeal,
            SALES,
            customer=customer(domain, name),
            product_line=product,
            amount=money(amount, currency),
            **body,
        )
