"""The base every Deal Ledger aggregate stands on: each event records its cause."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain.values import Cause


class LedgerAggregate(Aggregate):
    """An aggregate whose events carry the `Cause` (actor, command id, correlation id).

    Public methods validate and take the time from the caller's injected clock;
    private ``@event`` methods only mutate, because they are replayed.
    """

    # The parts of the state holding personal data, as paths (`support.*.note`): a
    # snapshot keeps them encrypted as the events do (domain/privacy.py).
    personal_state: ClassVar[tuple[str, ...]] = ()

    class Created(Aggregate.Created):
        cause: Cause
        # The fields holding personal data, stored encrypted (domain/privacy.py).
        personal_fields: ClassVar[tuple[str, ...]] = ()

    class Event(Aggregate.Event):
        cause: Cause
        personal_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def data_subject(self) -> str | None:
        """Whose personal data this aggregate's events hold, if anyone's."""
        return None

    @classmethod
    def _start(cls, created: type[Aggregate.Created], at: datetime, **fields: Any) -> Any:
        return cls._create(created, timestamp=at, **fields)
