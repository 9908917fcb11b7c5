"""The numbered invariants of docs/architecture.md, checked against what the ledger
stored, and the ledger's agreement with the reference model.

Each function raises AssertionError naming what broke; the state machine calls them
after every step (tests/property/ledger_machine.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from commands.ledger import DealLedger
from domain.deal import DealStatus
from domain.ids import protection_id
from domain.protection import ChannelProtection
from domain.registration import Registration, RegistrationStatus
from infra.audit.store import AuditStore
from infra.audit.verify import verify_all
from infra.store.recorders import HashChainingPostgresRecorder, HashChainingSQLiteRecorder
from tests.property.reference_model import Programme


def streams_written_after(ledger: DealLedger, position: int) -> tuple[set[UUID], int]:
    """The streams that gained events after ledger `position`, and the position now.

    Streams are append-only, so a stream's replay, versions and chain only need checking
    again once it has been written to."""
    written: set[UUID] = set()
    while True:
        page = ledger.recorder.select_notifications(
            start=position, limit=500, inclusive_of_start=False
        )
        written.update(UUID(str(n.originator_id)) for n in page)
        if not page:
            return written, position
        position = page[-1].id


def registrations_agree_with_the_model(ledger: DealLedger, model: Programme) -> None:
    """Every registration has the status and protection time the model expects."""
    for registration_id, expected in model.registrations.items():
        stored = ledger.get_registration(registration_id)
        assert stored.status.value == expected.status, (stored.status, expected)
        if expected.status in ("approved", "converted"):
            assert stored.protected_until == expected.until, (stored.protected_until, expected)
            assert stored.extensions == expected.extensions, expected


def deals_agree_with_the_model(ledger: DealLedger, model: Programme) -> None:
    """Every deal has the status and attached partners the model expects."""
    for deal_id, expected in model.deals.items():
        stored = ledger.get_deal(deal_id)
        assert stored.status.value == expected.status, (stored.status, expected)
        assert set(stored.partners) == set(expected.partners), (stored.partners, expected)


def at_most_one_active_protection_per_key(
    ledger: DealLedger, registration_ids: Iterable[UUID], now: datetime
) -> None:
    """docs/architecture.md, invariant I1: at most one active protection per conflict
    key at any instant, and the key's protection names that registration."""
    active: dict[str, list[UUID]] = {}
    for registration_id in registration_ids:
        registration = ledger.get_registration(registration_id)
        if _protects_at(ledger, registration, now):
            active.setdefault(registration.conflict_key, []).append(registration_id)
    for key, holders in active.items():
        assert len(holders) == 1, (key, holders)
        protection = ledger.get_protection(protection_id(key))
        assert protection.holder == holders[0], (key, protection.holder, holders)
        assert protection.is_protected_at(now), key


def _protects_at(ledger: DealLedger, registration: Registration, now: datetime) -> bool:
    """Approved and unexpired, or converted into a deal still open and unexpired."""
    until = registration.protected_until
    if until is None or now >= until:
        return False
    if registration.status is RegistrationStatus.CONVERTED and registration.deal_id is not None:
        return ledger.get_deal(registration.deal_id).is_open
    return registration.status is RegistrationStatus.APPROVED


def first_to_register_wins(ledger: DealLedger, conflict_keys: Iterable[str]) -> None:
    """docs/architecture.md, invariant I2, over each key's whole stored history: no
    grant was ever made while another registration's protection was active; a
    submission approved at once found the key free (no holder, no other pending
    claim); and no direct deal was opened on a protected key."""
    for key in conflict_keys:
        holder: UUID | None = None
        until: datetime | None = None
        pending: set[UUID] = set()
        stored: Iterable[Any] = ledger.events.get(protection_id(key))
        for event in stored:
            at: datetime = event.timestamp
            active = holder is not None and until is not None and at < until
            if isinstance(event, ChannelProtection.Granted):
                grantee = event.registration_id
                assert not (active and holder != grantee), (key, at, holder, grantee)
                if _approved_at_submission(ledger, grantee, event.cause.command_id):
                    assert holder is None, (key, at, "auto-approved over holder", holder)
                    assert pending <= {grantee}, (key, at, "auto-approved over", pending)
                holder, until = grantee, event.protected_until
                pending.discard(grantee)
            elif isinstance(event, ChannelProtection.Extended):
                until = event.protected_until
            elif isinstance(event, ChannelProtection.Released):
                holder, until = None, None
            elif isinstance(event, ChannelProtection.Claimed):
                pending.add(event.registration_id)
            elif isinstance(event, ChannelProtection.ClaimDropped):
                pending.discard(event.registration_id)
            elif isinstance(event, ChannelProtection.DirectDealOpened):
                assert not active, (key, at, "direct deal opened over", holder)


def _approved_at_submission(ledger: DealLedger, registration_id: UUID, command_id: str) -> bool:
    """Whether this registration was approved automatically, by the command at hand."""
    for event in ledger.events.get(registration_id):
        if isinstance(event, Registration.Approved) and event.cause.command_id == command_id:
            return bool(event.automatically)
    return False


def attribution_is_exact(ledger: DealLedger, deal_ids: Iterable[UUID]) -> None:
    """docs/architecture.md, invariant I3: shares name exactly the attached partners and
    sum to exactly 100; a won deal's attributed revenue sums exactly to its amount."""
    for deal_id in deal_ids:
        deal = ledger.get_deal(deal_id)
        assert set(deal.shares) == set(deal.partners), (deal_id, deal.shares, deal.partners)
        if deal.partners:
            assert sum(deal.shares.values(), Decimal(0)) == 100, (deal_id, deal.shares)
        if deal.status is DealStatus.WON and deal.attributed:
            total = sum((m.amount for m in deal.attributed.values()), Decimal(0))
            assert total == deal.amount.amount, (deal_id, deal.attributed, deal.amount)


def replay_equals_live(ledger: DealLedger, aggregate_ids: Iterable[UUID]) -> None:
    """docs/architecture.md, invariant I4 (write side): an aggregate rebuilt from its
    stored events alone equals the one the repository loads (from snapshots when
    taken)."""
    for aggregate_id in aggregate_ids:
        replayed = ledger.replay(aggregate_id)
        loaded: Any = ledger.repository.get(aggregate_id)
        assert vars(replayed) == vars(loaded), aggregate_id


def streams_are_append_only(ledger: DealLedger, aggregate_ids: Iterable[UUID]) -> None:
    """docs/architecture.md, invariant I5: versions run contiguously from 1; on a store
    that chains hashes, every stored event's hash chains to its predecessor."""
    for aggregate_id in aggregate_ids:
        versions = [e.originator_version for e in ledger.events.get(aggregate_id)]
        assert versions == list(range(1, len(versions) + 1)), (aggregate_id, versions)
    if isinstance(ledger.recorder, HashChainingPostgresRecorder | HashChainingSQLiteRecorder):
        report = verify_all(AuditStore(ledger))
        assert report.ok, report.problems
        assert report.unsealed == 0, report
