"""Small handler functions, one per command; the ledger dispatches to them by type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from commands.handlers import deals, partners, privacy, registrations
from commands.models import Command
from commands.unit_of_work import UnitOfWork

Handler = Callable[[Any, UnitOfWork], tuple[UUID | None, dict[str, Any]]]

HANDLERS: dict[type[Command], Handler] = {
    **partners.HANDLERS,
    **registrations.HANDLERS,
    **deals.HANDLERS,
    **privacy.HANDLERS,
}
