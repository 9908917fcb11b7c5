"""Handlers run through `DealLedger.execute` on the in-memory store, by a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commands.ledger import DealLedger
from domain.clock import ManualClock
from tests.support.driver import Driver, in_memory_ledger

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def ledger(clock: ManualClock) -> DealLedger:
    """The default policy: 90 days of protection, two extensions, 250,000 USD or EUR."""
    return in_memory_ledger(clock)


@pytest.fixture
def drive(ledger: DealLedger) -> Driver:
    driver = Driver(ledger)
    driver.onboard("acme", "globex", "contoso")
    return driver
