"""The service layer: the `DealLedger` application executes commands atomically."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from copy import deepcopy
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Cache, LRUCache
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper, Recording
from eventsourcing.utils import get_topic

from commands.contention import Turns, contended
from commands.handlers import HANDLERS, Handler
from commands.keyring import Keyring
from commands.models import Command, EraseDataSubject, ExpireProtections
from commands.outcome import Outcome
from commands.personal_data import PersonalDataMapper, SealedAsDict
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
        self.keyring = Keyring()
        super().__init__(env={"IS_SNAPSHOTTING_ENABLED": "y", **(env or {})})
        table = getattr(self.recorder, "subject_keys", None)
        if table is not None:
            self.keyring.bind(table)
        cache = self.repository.cache
        if cache is not None:
            # Cached aggregates hold personal data as it read before an erasure.
            self.keyring.on_erasure.append(lambda: _emptied(cache))
        self.clock: Clock = clock or SystemClock()
        self.policy = policy or LedgerPolicy()
        self.schedule = ProtectionSchedule(self)
        self.turns = Turns()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_ledger_transcodings(transcoder)
        transcoder.register(SealedAsDict(self.keyring))

    def construct_mapper(self) -> Mapper[UUID]:
        plain = super().construct_mapper()
        return PersonalDataMapper(
            plain.transcoder, self.keyring, compressor=plain.compressor, cipher=plain.cipher
        )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Saves atomically, once every stream about a data subject has its data key."""
        subjects: dict[UUID, str] = {}
        new: list[UUID] = []
        for obj in objs:
            subject = getattr(obj, "data_subject", None)
            if subject is not None:
                subjects[obj.id] = subject
                pending = obj.pending_events
                if pending and pending[0].originator_version == 1:
                    new.append(obj.id)
        if subjects:
            self.keyring.ensure(subjects, new)
        return super().save(*objs, **kwargs)

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
            with self.turns.taken(contended(command)):
                outcome = retry_on_conflict(
                    lambda: self._attempt(command, handler, fingerprint, cause)
                )
        except IntegrityError:
            raise ConcurrentModification(
                f"{command.type_name} {command.command_id} kept colliding with concurrent "
                f"changes after {MAX_ATTEMPTS} attempts; retry it with the same command id",
                command_id=command.command_id,
            ) from None
        if isinstance(command, EraseDataSubject):
            self._destroy_keys(outcome)
        return outcome

    def _destroy_keys(self, erasure: Outcome) -> None:
        """After an erasure is on record (also when a re-sent command replays it, so
        an interrupted erasure completes): the keys it names go, and with them the
        snapshots of their streams (a cache, which may predate sealing)."""
        streams = self.keyring.erase([UUID(k) for k in erasure.result.get("keys", ())])
        table = getattr(getattr(self.snapshots, "recorder", None), "events_table_name", None)
        drop = getattr(self.recorder, "delete_snapshots", None)
        if streams and table is not None and drop is not None:
            drop(table, streams)
        scrub = getattr(self.keyring.table, "scrub", None)
        if scrub is not None:
            scrub()

    def _attempt(
        self, command: Command, handler: Handler, fingerprint: str, cause: Cause
    ) -> Outcome:
        """One try at `command` against fresh state. Raises IntegrityError when someone
        else changed one of its aggregates (or handled this very command id) since
        they were loaded."""
        # The command's record comes along with the handler's first load: a command
        # already handled is answered from it, whatever the handler made of it.
        uow = UnitOfWork(
            self, cause, self.clock.now(), along=(command_record_id(command.command_id),)
        )
        try:
            aggregate_id, result = handler(command, uow)
        except DomainError:
            # The refusal can be this command's own earlier effect (also when a
            # concurrent copy committed meanwhile): then the first outcome is replayed.
            previous = self._previous_outcome(command, fingerprint)
            if previous is not None:
                return previous
            raise
        previous = self._previous_outcome(command, fingerprint, uow)
        if previous is not None:
            return previous
        record = CommandRecord.handled(
            command.type_name, fingerprint, aggregate_id, result, cause, uow.now
        )
        recordings = self.save(*uow.aggregates, record)
        position = max((r.notification.id for r in recordings), default=None)
        return Outcome(command.command_id, command.type_name, aggregate_id, result, position)

    def load_many(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, Any]:
        """The current state of each aggregate (None when it does not exist), for a
        command to change: copies, as `repository.get` gives them.

        On PostgreSQL all of them come in one round trip: for a cached aggregate the
        events stored since its cached version (by any process), for the others their
        newest snapshot and the events after it. Elsewhere, one `get` each."""
        self.keyring.refresh()
        # What is decoded now is cached only if no erasure came in meanwhile.
        generation = self.keyring.generation
        select_streams = getattr(self.recorder, "select_streams", None)
        if select_streams is None:
            return {i: self._get_or_none(i) for i in aggregate_ids}
        cache = self.repository.cache
        cached: dict[UUID, Any] = {}
        if cache is not None:
            for aggregate_id in aggregate_ids:
                # Cache entries are only ever replaced, never changed in place, and
                # every read of current state comes through here (the library's own
                # fast-forward changes entries in place, so `repository.get` must not
                # be used for current state beside this): a copy is taken first and
                # brought forward from its own version.
                with contextlib.suppress(KeyError):
                    cached[aggregate_id] = deepcopy(cache.get(aggregate_id))
        after = {i: (cached[i].version if i in cached else 0) for i in aggregate_ids}
        snapshot_recorder = getattr(self.snapshots, "recorder", None)
        snapshots, events = select_streams(
            after, getattr(snapshot_recorder, "events_table_name", None)
        )
        loaded: dict[UUID, Any] = {}
        for aggregate_id in aggregate_ids:
            stored = events.get(aggregate_id, [])
            if aggregate_id in cached and not stored:
                loaded[aggregate_id] = cached[aggregate_id]
                continue
            aggregate: Any = cached.get(aggregate_id)
            if aggregate_id in snapshots:
                aggregate = cast(Any, self.mapper.to_domain_event(snapshots[aggregate_id])).mutate(
                    None
                )
            for row in stored:
                aggregate = cast(Any, self.mapper.to_domain_event(row)).mutate(aggregate)
            if aggregate is not None and cache is not None:
                with self.keyring.caching(generation) as current:
                    if current:
                        cache.put(aggregate_id, aggregate)
                aggregate = deepcopy(aggregate)
            loaded[aggregate_id] = aggregate
        return loaded

    def _get_or_none(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _previous_outcome(
        self, command: Command, fingerprint: str, uow: UnitOfWork | None = None
    ) -> Outcome | None:
        record_id = command_record_id(command.command_id)
        fetched, record = uow.looked_up(record_id) if uow is not None else (False, None)
        if not fetched:
            # One indexed lookup: a command record is one event and never has a
            # snapshot, so the repository's snapshot query would only cost.
            stored = list(self.events.get(record_id, limit=1))
            record = cast(Any, stored[0]).mutate(None) if stored else None
        if record is None:
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

    def deal_notes(self, deal_id: UUID) -> list[str]:
        """A deal's notes, oldest first, from its NoteAdded events alone (the deal keeps
        only their count)."""
        select = getattr(self.recorder, "select_events_of_topic", None)
        topic = get_topic(Deal.NoteAdded)
        if select is not None:
            stored = select(deal_id, topic)
        else:
            stored = [e for e in self.recorder.select_events(deal_id) if e.topic == topic]
        return [cast(Any, self.mapper.to_domain_event(e)).text for e in stored]

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
        if version is None:
            # The one way current state is read: see `load_many` on the cache.
            found = self.load_many([aggregate_id])[aggregate_id]
        else:
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


def _emptied(cache: Cache[Any, Any]) -> None:
    """Every entry dropped (the library's LRUCache.clear leaves its index in place)."""
    if isinstance(cache, LRUCache):
        with cache.lock:
            cache.cache.clear()
            cache.clear()
            cache.full = False
    else:
        cache.cache.clear()
