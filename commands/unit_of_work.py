"""One command, one unit of work: the aggregates it touched are saved atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain import programme
from domain.base import LedgerAggregate
from domain.errors import NotFound
from domain.ids import customer_index_id, partner_id, protection_id
from domain.normalise import normalise_company_name, registrable_domain
from domain.partner import Partner
from domain.protection import ChannelProtection, CustomerIndex, IndexKind
from domain.registration import Registration
from domain.values import Cause, Customer

if TYPE_CHECKING:
    from commands.ledger import DealLedger

A = TypeVar("A", bound=LedgerAggregate)

_KIND_NAMES = {
    "Partner": "partner",
    "Registration": "registration",
    "Deal": "deal",
    "ChannelProtection": "channel protection",
    "CustomerIndex": "customer index",
}


@dataclass(frozen=True)
class LedgerPolicy:
    """The configurable rules of the channel programme."""

    protection_days: int = programme.PROTECTION_DAYS
    max_extensions: int = programme.MAX_EXTENSIONS
    auto_approve_limits: dict[str, Decimal] = field(
        default_factory=lambda: dict(programme.AUTO_APPROVE_LIMITS)
    )


class UnitOfWork:
    """Loads aggregates once, remembers new ones, and hands all of them to one save."""

    def __init__(self, ledger: DealLedger, cause: Cause, now: datetime) -> None:
        self.ledger = ledger
        self.cause = cause
        self.now = now
        self.policy = ledger.policy
        self._aggregates: dict[UUID, LedgerAggregate] = {}

    @property
    def aggregates(self) -> list[LedgerAggregate]:
        return list(self._aggregates.values())

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id in self._aggregates:
            found = self._aggregates[aggregate_id]
        else:
            try:
                found = self.ledger.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
            self._aggregates[aggregate_id] = found
        if not isinstance(found, cls):
            return None
        return found

    def get(self, cls: type[A], aggregate_id: UUID, label: str | None = None) -> A:
        found = self.find(cls, aggregate_id)
        if found is None:
            kind = _KIND_NAMES.get(cls.__name__, cls.__name__)
            raise NotFound(f"no {kind} {label or aggregate_id}", aggregate_id=str(aggregate_id))
        return found

    def add(self, aggregate: A) -> A:
        self._aggregates[aggregate.id] = aggregate
        return aggregate

    def partner(self, code: str) -> Partner:
        return self.get(Partner, partner_id(code), label=code)

    def registration(self, registration_id: UUID) -> Registration:
        return self.get(Registration, registration_id)

    def protection(self, conflict_key: str) -> ChannelProtection:
        """The key's protection aggregate, opened on first use."""
        existing = self.find(ChannelProtection, protection_id(conflict_key))
        if existing is not None:
            return existing
        return self.add(ChannelProtection.open(conflict_key, self.cause, self.now))

    def customer_indexes(self, registration: Registration) -> list[CustomerIndex]:
        """The company-name and registrable-domain indexes a registration belongs to."""
        return self.customer_indexes_of(registration.customer, registration.product_line)

    def customer_indexes_of(self, customer: Customer, product_line: str) -> list[CustomerIndex]:
        """The company-name and registrable-domain indexes of `customer` on a product line."""
        entries = (
            (IndexKind.COMPANY_NAME, normalise_company_name(customer.name)),
            (IndexKind.REGISTRABLE_DOMAIN, registrable_domain(customer.domain)),
        )
        indexes = []
        for kind, value in entries:
            index_id = customer_index_id(kind.value, value, product_line)
            index = self.find(CustomerIndex, index_id)
            if index is None:
                index = self.add(
                    CustomerIndex.open(kind, value, product_line, self.cause, self.now)
                )
            indexes.append(index)
        return indexes

    def describe(self) -> dict[str, Any]:
        return {str(k): type(v).__name__ for k, v in self._aggregates.items()}
