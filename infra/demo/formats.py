"""How the demo writes times, shares and ids, in its story and its tables alike."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "-"


def pct(share: Decimal) -> str:
    return f"{share.normalize():f}%"


def short(some_id: UUID) -> str:
    return str(some_id)[:8]
