"""The base every Deal Ledger aggregate stands on: each event records its cause."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain.values import Cause


class LedgerAggregate(Aggregate):
    """An aggregate whose events carry the `Cause` (actor, command id, correlation id).

    Public methods validate and take the time from the caller's injected clock;
    private ``@event`` methods only mutate, because they are replayed.
    """

    class Created(Aggregate.Created):
        cause: Cause

    class Event(Aggregate.Event):
        cause: Cause

    @classmethod
    def _start(cls, created: type[Aggregate.Created], at: datetime, **fields: Any) -> Any:
        return cls._create(created, timestamp=at, **fields)
