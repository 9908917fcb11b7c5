"""The service layer: the `DealLedger` application executes commands atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from commands.handlers import HANDLERS, Handler
from commands.models import Command, ExpireProtections
from commands.outcome import Outcome
from commands.retry import MAX_ATTEMPTS, retry_on_conflict
from commands.sweeper import ProtectionSchedule
from commands.transcodings import register_ledger_transcodings
from commands.unit_of_work import LedgerPolicy, UnitOfWork
from domain.clock import Clock, SystemClock
from domain.command_record import CommandRecord
from domain.deal import Deal
from domain.errors import (
    ConcurrentModification,
    DomainError,
    IdempotencyKeyReused,
    NotFound,
)
from domain.ids import command_record_id, partner_id
from domain.partner import Partner
from domain.protection import ChannelProtection, CustomerIndex
from domain.registration import Registration
from domain.values import Cause

T = TypeVar("T")


class DealLedger(Application[UUID]):
    """Deal Ledger's write side. `execute(command)` is the one way to change state."""

    name = "DealLedger"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        policy: LedgerPolicy | None = None,
        snapshot_interval: int = 100,
    ) -> None:
        # Snapshots every `snapshot_interval` events per stream keep loads flat.
        self.snapshotting_intervals = {  # type: ignore[misc]
            Deal: snapshot_interval,
            Registration: snapshot_interval,
            Partner: snapshot_interval,
            ChannelProtection: snapshot_interval,
            CustomerIndex: snapshot_interval,
        }
        super().__init__(env={"IS_SNAPSHOTTING_ENABLED": "y", **(env or {})})
        self.clock: Clock = clock or SystemClock()
        self.policy = policy or LedgerPolicy()
        self.schedule = ProtectionSchedule(self)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_ledger_transcodings(transcoder)

    # -- commands ------------------------------------------------------------

    def execute(self, command: Command) -> Outcome:
        """Handle `command` in one atomic save, exactly once per command id.

        A re-sent command id returns the first outcome and writes nothing, also when
        the copies race (a refusal caused by a copy that committed first is answered
        with that copy's outcome); racing writers to the same aggregates are retried
        against fresh state.
        """
        if isinstance(command, ExpireProtections):
            return self.expire_protections(command)
        handler = HANDLERS.get(type(command))
        if handler is None:
            raise NotFound(f"no handler for {type(command).__name__}")
        fingerprint = hashlib.sha256(command.fingerprint_body().encode()).hexdigest()
        cause = Cause(command.actor.to_domain(), command.command_id, command.correlation_id or "")
        try:
            return retry_on_conflict(lambda: self._attempt(command, handler, fingerprint, cause))
        except IntegrityError:
            raise ConcurrentModification(
                f"{command.type_name} {command.command_id} kept colliding with concurrent "
                f"changes after {MAX_ATTEMPTS} attempts; retry it with the same command id",
                command_id=command.command_id,
            ) from None

    def _attempt(
        self, command: Command, handler: Handler, fingerprint: str, cause: Cause
    ) -> Outcome:
        """One try at `command` against fresh state. Raises IntegrityError when someone
        else changed one of its aggregates (or handled this very command id) since
        they were loaded."""
        previous = self._previous_outcome(command, fingerprint)
        if previous is not None:
            return previous
        uow = UnitOfWork(self, cause, self.clock.now())
        try:
            aggregate_id, result = handler(command, uow)
        except DomainError:
            # A concurrent copy of this command may have committed after the check
            # above, so the refusal can be this command's own effect: replay it.
            previous = self._previous_outcome(command, fingerprint)
            if previous is not None:
                return previous
            raise
        record = CommandRecord.handled(
            command.type_name, fingerprint, aggregate_id, result, cause, uow.now
        )
        recordings = self.save(*uow.aggregates, record)
        position = max((r.notification.id for r in recordings), default=None)
        return Outcome(command.command_id, command.type_name, aggregate_id, result, position)

    def _previous_outcome(self, command: Command, fingerprint: str) -> Outcome | None:
        try:
            record: Any = self.repository.get(command_record_id(command.command_id))
        except AggregateNotFoundError:
            return None
        if not isinstance(record, CommandRecord) or record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"command id {command.command_id} was already used for a different command",
                command_id=command.command_id,
            )
        return Outcome(
            command.command_id,
            record.command_type,
            record.aggregate_id,
            dict(record.result),
            # The original position is at or before the current head; waiting for
            # the head therefore still gives read-your-writes.
            self.recorder.max_notification_id(),
            replayed=True,
        )

    def expire_protections(self, command: ExpireProtections) -> Outcome:
        """The sweeper: expire every protection whose time has passed, one key at a time.

        Each expiry is its own atomic save; the sweep's record is saved last, so a
        re-sent sweep id returns the first sweep's outcome."""
        fingerprint = _fingerprint(command)
        previous = self._previous_outcome(command, fingerprint)
        if previous is not None:
            return previous
        expired = self.schedule.sweep(command)
        result = {"expired": [str(r) for r in expired]}
        record = CommandRecord.handled(
            command.type_name, fingerprint, None, result, _cause(command), self.clock.now()
        )
        try:
            self.save(record)
        except IntegrityError:
            previous = self._previous_outcome(command, fingerprint)
            if previous is not None:
                return previous
            raise
        return Outcome(
            command.command_id,
            command.type_name,
            None,
            result,
            self.recorder.max_notification_id(),
        )

    # -- reads of the write model (for commands' callers, audits and tests) -------

    def get_registration(self, registration_id: UUID, version: int | None = None) -> Registration:
        return self._get(Registration, registration_id, version)

    def get_deal(self, deal_id: UUID, version: int | None = None) -> Deal:
        return self._get(Deal, deal_id, version)

    def get_partner(self, partner_code: str) -> Partner:
        return self._get(Partner, partner_id(partner_code), None)

    def get_protection(self, protection_id: UUID) -> ChannelProtection:
        return self._get(ChannelProtection, protection_id, None)

    def replay(self, aggregate_id: UUID, version: int | None = None) -> Any:
        """Rebuild an aggregate from its stored events alone, ignoring snapshots."""
        aggregate: Any = None
        for stored in self.events.get(aggregate_id, lte=version):
            aggregate = cast(Any, stored).mutate(aggregate)
        if aggregate is None:
            raise NotFound(f"no aggregate {aggregate_id}", aggregate_id=str(aggregate_id))
        return aggregate

    def _get(self, cls: type[T], aggregate_id: UUID, version: int | None) -> T:
        found: Any
        try:
            found = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            found = None
        if not isinstance(found, cls):
            raise NotFound(
                f"no {cls.__name__.lower()} {aggregate_id}", aggregate_id=str(aggregate_id)
            )
        return found


def _fingerprint(command: Command) -> str:
    return hashlib.sha256(command.fingerprint_body().encode()).hexdigest()


def _cause(command: Command) -> Cause:
    return Cause(command.actor.to_domain(), command.command_id, command.correlation_id or "")
