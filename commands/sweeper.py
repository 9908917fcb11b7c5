"""The expiry sweeper: ends protections whose `protected_until` has passed.

It follows the ledger's own notification log for protection grants, extensions and
releases (a process manager's view, never a read model), and decides each expiry
against the authoritative `ChannelProtection` aggregate in its own atomic save.
Safe to run repeatedly and concurrently with submissions: a key already freed by a
submission (which releases lapsed protection itself) is simply skipped.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from commands.handlers.protection import release_if_lapsed
from commands.retry import retry_on_conflict
from commands.unit_of_work import UnitOfWork
from domain.permissions import MANAGERS, actor_must_have_role
from domain.protection import ChannelProtection
from domain.values import Cause

if TYPE_CHECKING:
    from commands.ledger import DealLedger
    from commands.models import ExpireProtections

_TOPICS = [
    get_topic(ChannelProtection.Granted),
    get_topic(ChannelProtection.Extended),
    get_topic(ChannelProtection.Released),
]
_PAGE = 500


class ProtectionSchedule:
    """Known protection expiries, caught up incrementally from the notification log."""

    def __init__(self, ledger: DealLedger) -> None:
        self._ledger = ledger
        self._position = 0
        self._until: dict[UUID, datetime] = {}
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        with self._lock:
            while True:
                page = self._ledger.recorder.select_notifications(
                    start=self._position, limit=_PAGE, topics=_TOPICS, inclusive_of_start=False
                )
                for notification in page:
                    event = self._ledger.mapper.to_domain_event(notification)
                    pid = event.originator_id
                    if isinstance(event, ChannelProtection.Released):
                        self._until.pop(pid, None)
                    elif isinstance(event, ChannelProtection.Granted | ChannelProtection.Extended):
                        self._until[pid] = event.protected_until
                    self._position = notification.id
                if len(page) < _PAGE:
                    return

    def due(self, now: datetime, limit: int) -> list[UUID]:
        self.catch_up()
        with self._lock:
            lapsed = [(until, pid) for pid, until in self._until.items() if until <= now]
        return [pid for _, pid in sorted(lapsed)[:limit]]

    def sweep(self, command: ExpireProtections) -> list[UUID]:
        """Expire what is due now; returns the registrations whose protection ended."""
        actor = command.actor.to_domain()
        actor_must_have_role(actor, MANAGERS, "expire protections")
        expired: list[UUID] = []
        for pid in self.due(self._ledger.clock.now(), command.limit):
            cause = Cause(actor, f"{command.command_id}:{pid}", command.correlation_id or "")
            released = self._expire_one(pid, cause)
            if released is not None:
                expired.append(released)
        return expired

    def _expire_one(self, protection_id: UUID, cause: Cause) -> UUID | None:
        try:
            return retry_on_conflict(lambda: self._try_expire(protection_id, cause))
        except IntegrityError:
            return None  # kept losing races to other writers: the next sweep sees it again

    def _try_expire(self, protection_id: UUID, cause: Cause) -> UUID | None:
        uow = UnitOfWork(self._ledger, cause, self._ledger.clock.now())
        protection = uow.find(ChannelProtection, protection_id)
        if protection is None or protection.holder is None:
            return None
        holder = protection.holder
        if not release_if_lapsed(uow, protection):
            return None
        self._ledger.save(*uow.aggregates)
        return holder
