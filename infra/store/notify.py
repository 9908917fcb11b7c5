"""PostgreSQL LISTEN/NOTIFY of event-store appends: wake up instead of polling.

The event store notifies its channel (the events table's name) in every append's
transaction, so a listener learns of new events as they commit. A listener still
reads the log after waking: a notification says "look", never what to read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

# Short waits between looks at `stop`, so that a stop is seen promptly.
_SLICE_SECONDS = 0.5


def channel_of(recorder: Any) -> str | None:
    """The channel a recorder notifies on appends (None: not PostgreSQL)."""
    channel = getattr(recorder, "channel_name", None)
    return channel if isinstance(channel, str) else None


def listen(conn: psycopg.Connection[Any], channel: str) -> None:
    """Subscribes an autocommit connection to `channel`."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def wait_for_notify(conn: psycopg.Connection[Any], stop: threading.Event, seconds: float) -> bool:
    """Waits on a listening connection until a notification (True), `stop` or `seconds`."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        for _ in conn.notifies(timeout=min(left, _SLICE_SECONDS), stop_after=1):
            return True
    return False


def follow_appends(
    conninfo: str,
    channel: str,
    wake: Callable[[], None],
    stop: threading.Event,
    retry_seconds: float,
    log: Any,
) -> None:
    """Calls `wake` on every append until `stop`; reconnects after a lost connection."""
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                listen(conn, channel)
                while not stop.is_set():
                    if wait_for_notify(conn, stop, _SLICE_SECONDS):
                        wake()
        except psycopg.Error as exc:  # the database is away: pollers still poll
            log.debug("listening for appends failed", error=repr(exc))
            stop.wait(retry_seconds)
