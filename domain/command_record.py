"""The idempotency record: one per command id, saved with the command's effects."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import register_topic

from domain.base import LedgerAggregate
from domain.ids import command_record_id
from domain.values import Cause


class CommandRecord(LedgerAggregate):
    class Handled(LedgerAggregate.Created):
        command_type: str
        fingerprint: str
        aggregate_id: UUID | None
        result: dict[str, Any]

    def __init__(
        self,
        command_type: str,
        fingerprint: str,
        aggregate_id: UUID | None,
        result: dict[str, Any],
        cause: Cause,
    ) -> None:
        self.command_type = command_type
        self.fingerprint = fingerprint
        self.aggregate_id = aggregate_id
        self.result = result

    @classmethod
    def handled(
        cls,
        command_type: str,
        fingerprint: str,
        aggregate_id: UUID | None,
        result: dict[str, Any],
        cause: Cause,
        at: datetime,
    ) -> CommandRecord:
        record: CommandRecord = cls._start(
            cls.Handled,
            at,
            id=command_record_id(cause.command_id),
            command_type=command_type,
            fingerprint=fingerprint,
            aggregate_id=aggregate_id,
            result=result,
            cause=cause,
        )
        return record


# Records stored before the class moved here name their old module in their topic.
register_topic("commands.records:CommandRecord", CommandRecord)
