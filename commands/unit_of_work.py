"""One command, one unit of work: the aggregates it touched are saved atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from domain import programme
from domain.base import LedgerAggregate
from domain.errors import NotFound
from domain.ids import customer_index_id, partner_id, protection_id
from domain.normalise import conflict_key, normalise_company_name, registrable_domain
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

    def __init__(
        self, ledger: DealLedger, cause: Cause, now: datetime, along: tuple[UUID, ...] = ()
    ) -> None:
        self.ledger = ledger
        self.cause = cause
        self.now = now
        self.policy = ledger.policy
        self._aggregates: dict[UUID, LedgerAggregate] = {}
        self._absent: set[UUID] = set()
        # Ids fetched along with the first load (the command's own record), saving
        # the round trip a lookup of their own would cost.
        self._along = along
        self._looked_up: dict[UUID, LedgerAggregate | None] = {}

    @property
    def aggregates(self) -> list[LedgerAggregate]:
        return list(self._aggregates.values())

    def load(self, *aggregate_ids: UUID) -> None:
        """Fetch in one round trip the aggregates this command is about to use (ids it
        already holds, or knows to be absent, are not asked for again)."""
        wanted = [
            i
            for i in dict.fromkeys(aggregate_ids)
            if i not in self._aggregates and i not in self._absent
        ]
        if not wanted:
            return
        along, self._along = self._along, ()
        for aggregate_id, found in self.ledger.load_many([*wanted, *along]).items():
            if aggregate_id in along:
                self._looked_up[aggregate_id] = found
            elif found is None:
                self._absent.add(aggregate_id)
            else:
                self._aggregates[aggregate_id] = found

    def looked_up(self, aggregate_id: UUID) -> tuple[bool, LedgerAggregate | None]:
        """Whether an id passed as `along` was fetched yet, and what was found."""
        return aggregate_id in self._looked_up, self._looked_up.get(aggregate_id)

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        self.load(aggregate_id)
        found = self._aggregates.get(aggregate_id)
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
        self._absent.discard(aggregate.id)
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

    def load_claim(self, partner_code: str, customer: Customer, product_line: str) -> None:
        """Fetch at once what a claim on a customer needs: the partner, the key's
        protection and the customer's indexes."""
        self.load(
            partner_id(partner_code),
            protection_id(conflict_key(customer.domain, product_line)),
            *(index_id for _, _, index_id in index_entries(customer, product_line)),
        )

    def customer_indexes(self, registration: Registration) -> list[CustomerIndex]:
        """The company-name and registrable-domain indexes a registration belongs to."""
        return self.customer_indexes_of(registration.customer, registration.product_line)

    def customer_indexes_of(self, customer: Customer, product_line: str) -> list[CustomerIndex]:
        """The company-name and registrable-domain indexes of `customer` on a product line,
        opened on first use."""
        entries = index_entries(customer, product_line)
        self.load(*(index_id for _, _, index_id in entries))
        indexes = []
        for kind, value, index_id in entries:
            index = self.find(CustomerIndex, index_id)
            if index is None:
                index = self.add(
                    CustomerIndex.open(kind, value, product_line, self.cause, self.now)
                )
            indexes.append(index)
        return indexes

    def describe(self) -> dict[str, Any]:
        return {str(k): type(v).__name__ for k, v in self._aggregates.items()}


def index_entries(customer: Customer, product_line: str) -> list[tuple[IndexKind, str, UUID]]:
    """(kind, normalised value, index id) of each customer index `customer` belongs to."""
    entries = (
        (IndexKind.COMPANY_NAME, normalise_company_name(customer.name)),
        (IndexKind.REGISTRABLE_DOMAIN, registrable_domain(customer.domain)),
    )
    return [
        (kind, value, customer_index_id(kind.value, value, product_line)) for kind, value in entries
    ]
