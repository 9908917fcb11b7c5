"""The ledger against the reference model on the in-memory store, with the invariants
of docs/architecture.md (I1 to I5) checked after every step."""

from __future__ import annotations

from tests.property.ledger_machine import LedgerMachine

TestLedgerRules = LedgerMachine.TestCase
