"""The auditor's Python API: history, state as of, verify (what the HTTP layer calls)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from commands.ledger import DealLedger
from infra.audit.history import AsOf, HistoryEntry, deal_as_of, deal_history, deal_streams
from infra.audit.store import AuditStore
from infra.audit.verify import Anchors, VerifyReport, verify_all, verify_streams


def history(
    ledger: DealLedger, deal_id: UUID, *, after_position: int = 0, limit: int | None = None
) -> Iterator[HistoryEntry]:
    return deal_history(AuditStore(ledger), deal_id, after_position=after_position, limit=limit)


def state_as_of(
    ledger: DealLedger,
    deal_id: UUID,
    *,
    as_of: datetime | None = None,
    version: int | None = None,
) -> AsOf:
    return deal_as_of(AuditStore(ledger), deal_id, as_of=as_of, version=version)


def verify(
    ledger: DealLedger, deal_id: UUID | None = None, anchored: Anchors | None = None
) -> VerifyReport:
    """Recompute the hash chains and the ledger tree (of the deal's streams, or of every
    stream), held to the signed checkpoints in `anchored` when given."""
    store = AuditStore(ledger)
    if deal_id is None:
        return verify_all(store, anchored)
    return verify_streams(store, deal_streams(store, deal_id), anchored)
