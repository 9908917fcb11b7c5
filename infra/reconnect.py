"""Riding out an outage of Kafka or PostgreSQL: the one back-off of the long-running loops.

The relay, the projector host and the command consumer each repeat one step (publish
a batch, poll once) until told to stop. A step that fails for a reason outside it
(the broker or database is away) is tried again after a pause that grows from
0.1-0.2 s, doubling, to 0.5-1 s, half of it drawn at random so that several
processes do not retry in step. It never exceeds one second, so a loop notices a
returned service within a second or two; it starts again from the bottom after a
step succeeds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
    wait_random_exponential,
)

RETRY_DELAY_MAX_S = 1.0

# Attempt n waits d/2 + uniform(0, d/2) with d = min(1 s, 0.2 s * 2**(n-1)).
_HALF_MAX = RETRY_DELAY_MAX_S / 2
_WAIT = wait_exponential(multiplier=0.1, max=_HALF_MAX) + wait_random_exponential(
    multiplier=0.1, max=_HALF_MAX
)

# Told of each failure before its pause: the error, the attempt number (1, 2, ...)
# and the seconds it will wait.
OnRetry = Callable[[BaseException, int, float], None]


def run_until_stopped(
    step: Callable[[], object],
    stop: threading.Event,
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    on_retry: OnRetry,
) -> None:
    """Calls `step` until `stop` is set, backing off after each error of a `retry_on`
    kind; any other error propagates. Returns once `stop` is set, also mid-pause."""

    def attempt() -> None:
        if not stop.is_set():  # set during the pause: no further try
            step()

    def pause(seconds: float) -> None:
        stop.wait(seconds)  # cut short by `stop`

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        assert error is not None  # only failed attempts are retried
        on_retry(error, state.attempt_number, state.upcoming_sleep)

    while not stop.is_set():
        retrying = Retrying(
            retry=retry_if_exception_type(retry_on),
            wait=_WAIT,
            stop=stop_when_event_set(stop),
            sleep=pause,
            before_sleep=before_sleep,
        )
        try:
            retrying(attempt)  # returns after one successful step: the back-off resets
        except RetryError:
            return  # stopped while failing
