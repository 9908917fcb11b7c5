"""What a handled command returns, and what a re-sent command gets back again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Outcome:
    command_id: str
    command_type: str
    aggregate_id: UUID | None
    result: dict[str, Any] = field(default_factory=dict)
    position: int | None = None  # ledger position of the last event written
    replayed: bool = False  # True when the command id was seen before

    def to_json(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "command_type": self.command_type,
            "aggregate_id": str(self.aggregate_id) if self.aggregate_id else None,
            "result": self.result,
            "position": self.position,
            "replayed": self.replayed,
        }
