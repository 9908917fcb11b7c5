"""Optimistic concurrency: a unit of work whose save lost a race is run again.

Two commands that touch the same aggregate both load version n; the second save
finds version n+1 taken and raises `IntegrityError`. Running the whole unit of work
again against fresh state decides it anew (the winner's effect is then visible).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import IntegrityError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

T = TypeVar("T")

# How often a unit of work is tried before the conflict is handed to the caller.
MAX_ATTEMPTS = 12


def retry_on_conflict(attempt: Callable[[], T]) -> T:
    """`attempt()`, run again after each lost race with a pause drawn between 0 and
    2 ms, 4 ms, 8 ms, ... (jittered, so racers spread out). After MAX_ATTEMPTS lost
    races the last `IntegrityError` propagates; any other error at once."""
    retrying = Retrying(
        retry=retry_if_exception_type(IntegrityError),
        stop=stop_after_attempt(MAX_ATTEMPTS),
        wait=wait_random_exponential(multiplier=0.002),
        reraise=True,
    )
    return retrying(attempt)
