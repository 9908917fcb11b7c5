"""Channel protection: the write-model guards of the first-to-register rule.

One `ChannelProtection` per conflict key holds at most one protected registration
and the registrations still pending on that key. `CustomerIndex` aggregates (one
per normalised company name and one per registrable domain, each per product line)
remember which keys are claimed, so near-duplicates are found without a read model.
A submission saves these together with the registration in ONE atomic save, so
racing submissions for one key are serialised by optimistic concurrency.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate
from domain.errors import ChannelConflict, IllegalTransition
from domain.ids import customer_index_id, protection_id
from domain.values import Cause, LedgerEnum


class ReleaseReason(LedgerEnum):
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"
    DEAL_CLOSED = "deal_closed"


class ChannelProtection(LedgerAggregate):
    class Opened(LedgerAggregate.Created):
        conflict_key: str

    class Claimed(LedgerAggregate.Event):
        registration_id: UUID
        partner_code: str

    class ClaimDropped(LedgerAggregate.Event):
        registration_id: UUID

    class Granted(LedgerAggregate.Event):
        registration_id: UUID
        partner_code: str
        protected_until: datetime

    class Extended(LedgerAggregate.Event):
        protected_until: datetime

    class Released(LedgerAggregate.Event):
        registration_id: UUID
        reason: ReleaseReason

    class DirectDealOpened(LedgerAggregate.Event):
        deal_id: UUID

    class DirectDealClosed(LedgerAggregate.Event):
        deal_id: UUID

    def __init__(self, conflict_key: str, cause: Cause) -> None:
        self.conflict_key = conflict_key
        self.holder: UUID | None = None
        self.holder_partner: str | None = None
        self.protected_until: datetime | None = None
        self.pending: dict[str, str] = {}  # registration id (str) -> partner code
        self.direct_deals: list[str] = []  # open direct (non-partner) deal ids

    @classmethod
    def open(cls, conflict_key: str, cause: Cause, at: datetime) -> ChannelProtection:
        protection: ChannelProtection = cls._start(
            cls.Opened, at, id=protection_id(conflict_key), conflict_key=conflict_key, cause=cause
        )
        return protection

    # -- rules named as sentences ------------------------------------------

    def is_protected_at(self, at: datetime) -> bool:
        """Protection holds until `protected_until`, even before the sweeper runs."""
        return (
            self.holder is not None
            and self.protected_until is not None
            and at < self.protected_until
        )

    def has_lapsed_at(self, at: datetime) -> bool:
        return self.holder is not None and not self.is_protected_at(at)

    def refuse_direct_deal_if_protected(self, at: datetime) -> None:
        """While a key is protected, a direct (non-partner) deal for it is refused."""
        if self.is_protected_at(at):
            raise ChannelConflict(
                f"{self.conflict_key} is protected for partner {self.holder_partner}; "
                "convert that registration instead of opening a direct deal",
                conflict_key=self.conflict_key,
                holder_registration_id=str(self.holder),
            )

    @property
    def has_open_direct_deal(self) -> bool:
        return bool(self.direct_deals)

    def is_contested_by_others(self, registration_id: UUID) -> bool:
        return any(rid != str(registration_id) for rid in self.pending)

    def protects(self, registration_id: UUID, at: datetime) -> bool:
        return self.holder == registration_id and self.is_protected_at(at)

    # -- transitions ---------------------------------------------------------

    def claim(self, registration_id: UUID, partner_code: str, cause: Cause, at: datetime) -> None:
        if str(registration_id) in self.pending:
            return
        self._claim(
            registration_id=registration_id, partner_code=partner_code, cause=cause, timestamp=at
        )

    @event(Claimed)
    def _claim(
        self, registration_id: UUID, partner_code: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.pending[str(registration_id)] = partner_code

    def drop_claim(self, registration_id: UUID, cause: Cause, at: datetime) -> None:
        if str(registration_id) not in self.pending:
            return
        self._drop_claim(registration_id=registration_id, cause=cause, timestamp=at)

    @event(ClaimDropped)
    def _drop_claim(self, registration_id: UUID, cause: Cause, timestamp: datetime) -> None:
        self.pending.pop(str(registration_id), None)

    def grant(
        self,
        registration_id: UUID,
        partner_code: str,
        protected_until: datetime,
        cause: Cause,
        at: datetime,
    ) -> None:
        if self.is_protected_at(at) and self.holder != registration_id:
            raise ChannelConflict(
                f"{self.conflict_key} is protected for partner {self.holder_partner} "
                f"until {self.protected_until:%Y-%m-%d %H:%M} UTC",
                conflict_key=self.conflict_key,
                holder_registration_id=str(self.holder),
            )
        if self.has_lapsed_at(at):
            raise IllegalTransition("the lapsed protection must be released before a new grant")
        self._grant(
            registration_id=registration_id,
            partner_code=partner_code,
            protected_until=protected_until,
            cause=cause,
            timestamp=at,
        )

    @event(Granted)
    def _grant(
        self,
        registration_id: UUID,
        partner_code: str,
        protected_until: datetime,
        cause: Cause,
        timestamp: datetime,
    ) -> None:
        self.pending.pop(str(registration_id), None)
        self.holder = registration_id
        self.holder_partner = partner_code
        self.protected_until = protected_until

    def extend(
        self, registration_id: UUID, protected_until: datetime, cause: Cause, at: datetime
    ) -> None:
        if not self.protects(registration_id, at):
            raise IllegalTransition("only a registration holding protection can extend it")
        self._extend(protected_until=protected_until, cause=cause, timestamp=at)

    @event(Extended)
    def _extend(self, protected_until: datetime, cause: Cause, timestamp: datetime) -> None:
        self.protected_until = protected_until

    def release(
        self, registration_id: UUID, reason: ReleaseReason, cause: Cause, at: datetime
    ) -> bool:
        """Ends protection held by `registration_id`; returns False when it holds none."""
        if self.holder != registration_id:
            return False
        self._release(
            registration_id=registration_id, reason=ReleaseReason(reason), cause=cause, timestamp=at
        )
        return True

    @event(Released)
    def _release(
        self, registration_id: UUID, reason: ReleaseReason, cause: Cause, timestamp: datetime
    ) -> None:
        self.holder = None
        self.holder_partner = None
        self.protected_until = None

    def record_direct_deal(self, deal_id: UUID, cause: Cause, at: datetime) -> None:
        """Recording the deal here serialises it against a racing grant on the same key."""
        self.refuse_direct_deal_if_protected(at)
        self._record_direct_deal(deal_id=deal_id, cause=cause, timestamp=at)

    @event(DirectDealOpened)
    def _record_direct_deal(self, deal_id: UUID, cause: Cause, timestamp: datetime) -> None:
        self.direct_deals.append(str(deal_id))

    def close_direct_deal(self, deal_id: UUID, cause: Cause, at: datetime) -> None:
        if str(deal_id) not in self.direct_deals:
            return
        self._close_direct_deal(deal_id=deal_id, cause=cause, timestamp=at)

    @event(DirectDealClosed)
    def _close_direct_deal(self, deal_id: UUID, cause: Cause, timestamp: datetime) -> None:
        self.direct_deals.remove(str(deal_id))


class IndexKind(LedgerEnum):
    COMPANY_NAME = "company_name"
    REGISTRABLE_DOMAIN = "registrable_domain"


class CustomerIndex(LedgerAggregate):
    """Which conflict keys are live under one company name or registrable domain."""

    class Opened(LedgerAggregate.Created):
        kind: IndexKind
        value: str
        product_line: str

    class Claimed(LedgerAggregate.Event):
        registration_id: UUID
        conflict_key: str

    class Released(LedgerAggregate.Event):
        registration_id: UUID

    def __init__(self, kind: IndexKind, value: str, product_line: str, cause: Cause) -> None:
        self.kind = IndexKind(kind)
        self.value = value
        self.product_line = product_line
        self.claims: dict[str, str] = {}  # registration id (str) -> conflict key

    @classmethod
    def open(
        cls, kind: IndexKind, value: str, product_line: str, cause: Cause, at: datetime
    ) -> CustomerIndex:
        index: CustomerIndex = cls._start(
            cls.Opened,
            at,
            id=customer_index_id(IndexKind(kind).value, value, product_line),
            kind=IndexKind(kind),
            value=value,
            product_line=product_line,
            cause=cause,
        )
        return index

    def other_keys_than(self, conflict_key: str) -> set[str]:
        """Live claims under this name/domain on a different exact key: near-duplicates."""
        return {key for key in self.claims.values() if key != conflict_key}

    def claim(self, registration_id: UUID, conflict_key: str, cause: Cause, at: datetime) -> None:
        if str(registration_id) in self.claims:
            return
        self._claim(
            registration_id=registration_id, conflict_key=conflict_key, cause=cause, timestamp=at
        )

    @event(Claimed)
    def _claim(
        self, registration_id: UUID, conflict_key: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.claims[str(registration_id)] = conflict_key

    def release(self, registration_id: UUID, cause: Cause, at: datetime) -> None:
        if str(registration_id) not in self.claims:
            return
        self._release(registration_id=registration_id, cause=cause, timestamp=at)

    @event(Released)
    def _release(self, registration_id: UUID, cause: Cause, timestamp: datetime) -> None:
        self.claims.pop(str(registration_id), None)
