"""DESIGN.md §3 invariants, checked on the in-memory store after every step."""

from __future__ import annotations

from tests.property.ledger_machine import LedgerMachine

TestLedgerRules = LedgerMachine.TestCase
