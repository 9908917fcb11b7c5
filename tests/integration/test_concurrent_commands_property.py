"""Concurrent commands through group commit equal some serial execution.

Drawn submissions (partners, colliding customers, spellings, values around the
auto-approval limit) are sent at once by threads of two ledger instances on the real
PostgreSQL: the threads of one share its group commit, the two race as two processes
would. Afterwards:

- the invariants hold: at most one active protection per conflict key (I1, I2) and
  append-only, hash-chained streams (I5);
- every outcome equals what one serial execution gives: the accepted commands in the
  order of their ledger positions, each refused one at some point of that order (a
  refusal writes nothing, so where it stood changes no other outcome). The serial
  run is on the in-memory store, with the same clock and policy.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.ledger import DealLedger
from commands.models import Command
from commands.outcome import Outcome
from domain.clock import ManualClock
from domain.errors import DomainError
from infra.settings import Settings
from tests.property import strategies as draw
from tests.property.invariants import at_most_one_active_protection_per_key, streams_are_append_only
from tests.property.ledger_machine import POLICY, START
from tests.property.reference_model import Submission
from tests.support.driver import Driver, in_memory_ledger

DATABASE_URL = os.environ.get(
    "DEALLEDGER_TEST_DATABASE_URL",
    "postgresql://dealledger:dealledger@127.0.0.1:5432/dealledger_test",
)
EXAMPLES = int(os.environ.get("DEALLEDGER_PG_PROPERTY_EXAMPLES", "50")) // 2
THREADS_PER_LEDGER = 4

Answer = dict[str, Any] | str  # an outcome's result, or a refusal's code


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = f"conc_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def postgres_ledger(schema: str, clock: ManualClock) -> DealLedger:
    env = {**Settings(database_url=DATABASE_URL).eventsourcing_env(), "POSTGRES_SCHEMA": schema}
    return DealLedger(env=env, clock=clock, policy=POLICY, snapshot_interval=3)


def commands_for(asks: list[Submission], clock: ManualClock) -> list[Command]:
    drive = Driver(in_memory_ledger(clock, POLICY), prefix="conc")
    return [
        drive.submission(
            ask.partner, ask.domain, name=ask.name, product=ask.product, amount=ask.value,
            currency=draw.CURRENCY, country="DE",
            expected_close=(clock.now() + timedelta(days=ask.close_in_days)).date(),
        )
        for ask in asks
    ]  # fmt: skip


def answer(ledger: DealLedger, command: Command) -> tuple[Answer, Outcome | None]:
    try:
        outcome = ledger.execute(command)
    except DomainError as refusal:
        return refusal.code, None
    return outcome.result, outcome


def serial_ledger(clock: ManualClock) -> DealLedger:
    ledger = in_memory_ledger(clock, POLICY, snapshot_interval=3)
    Driver(ledger, "onboard").onboard(*draw.PARTNERS)
    return ledger


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(asks=st.lists(draw.submissions(), min_size=2, max_size=2 * THREADS_PER_LEDGER))
def test_concurrent_submissions_equal_a_serial_order(schema: str, asks: list[Submission]) -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    clock = ManualClock(START)
    ledgers = [postgres_ledger(schema, clock), postgres_ledger(schema, clock)]
    try:
        Driver(ledgers[0], "onboard").onboard(*draw.PARTNERS)
        commands = commands_for(asks, clock)
        answers: dict[int, tuple[Answer, Outcome | None]] = {}
        failures: list[BaseException] = []
        barrier = threading.Barrier(len(commands), timeout=60)

        def send(n: int) -> None:
            barrier.wait()
            try:
                answers[n] = answer(ledgers[n % 2], commands[n])
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(len(commands))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures, failures
        assert len(answers) == len(commands)

        reader = ledgers[0]
        notifications = reader.recorder.select_notifications(start=1, limit=100_000)
        streams = {uuid.UUID(str(n.originator_id)) for n in notifications}
        streams_are_append_only(reader, streams)
        registrations = [o.aggregate_id for _, o in answers.values() if o and o.aggregate_id]
        at_most_one_active_protection_per_key(reader, registrations, clock.now())
    finally:
        for ledger in ledgers:
            ledger.close()

    accepted = sorted(
        (outcome.position or 0, n) for n, (_, outcome) in answers.items() if outcome is not None
    )
    order = [n for _, n in accepted]
    serial = serial_ledger(clock)
    for n in order:
        assert answer(serial, commands[n])[0] == answers[n][0], (n, commands[n])
    for n, (code, outcome) in answers.items():
        if outcome is not None:
            continue
        assert any(
            refused_at(clock, [commands[m] for m in order[:prefix]], commands[n]) == code
            for prefix in range(len(order) + 1)
        ), (n, code, commands[n])


def refused_at(clock: ManualClock, before: list[Command], command: Command) -> Answer:
    """What `command` gets, serially, right after `before`."""
    ledger = serial_ledger(clock)
    for earlier in before:
        answer(ledger, earlier)
    return answer(ledger, command)[0]
