"""The two retry policies: a unit of work that lost a race, and a loop riding out an outage."""

from __future__ import annotations

import threading
import time

import pytest
from eventsourcing.persistence import IntegrityError

from commands.retry import MAX_ATTEMPTS, retry_on_conflict
from infra.reconnect import RETRY_DELAY_MAX_S, run_until_stopped


class Outage(Exception):
    pass


# -- optimistic concurrency ---------------------------------------------------


def test_a_unit_of_work_that_lost_a_race_is_run_again_until_it_wins() -> None:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise IntegrityError("version taken")
        return "saved"

    assert retry_on_conflict(attempt) == "saved"
    assert len(calls) == 3


def test_after_max_attempts_lost_races_the_conflict_reaches_the_caller() -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise IntegrityError("version taken")

    with pytest.raises(IntegrityError):
        retry_on_conflict(attempt)
    assert len(calls) == MAX_ATTEMPTS == 12


def test_other_errors_of_a_unit_of_work_are_not_retried() -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        retry_on_conflict(attempt)
    assert len(calls) == 1


# -- reconnecting -------------------------------------------------------------


def test_the_reconnect_back_off_doubles_to_one_second_and_restarts_after_a_success() -> None:
    stop = threading.Event()
    # Four failures, one success, one failure; the stop comes during the last pause.
    script = [Outage, Outage, Outage, Outage, None, Outage]
    retries: list[tuple[int, float]] = []

    def step() -> None:
        outcome = script.pop(0)
        if outcome is not None:
            raise outcome("away")

    def on_retry(exc: BaseException, attempt: int, delay: float) -> None:
        assert isinstance(exc, Outage)
        retries.append((attempt, delay))
        if not script:
            stop.set()

    started = time.monotonic()
    run_until_stopped(step, stop, retry_on=Outage, on_retry=on_retry)

    assert [attempt for attempt, _ in retries] == [1, 2, 3, 4, 1]
    bounds = [(0.1, 0.2), (0.2, 0.4), (0.4, 0.8), (0.5, RETRY_DELAY_MAX_S), (0.1, 0.2)]
    for (_, delay), (low, high) in zip(retries, bounds, strict=True):
        assert low <= delay <= high
    # The last pause was cut short by the stop: only the first four were waited out.
    assert time.monotonic() - started < sum(delay for _, delay in retries[:4]) + 0.15


def test_an_error_that_is_not_an_outage_stops_the_loop() -> None:
    def step() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        run_until_stopped(step, threading.Event(), retry_on=Outage, on_retry=lambda *_: None)
