"""The demo's own store: where it is, which stores it may replace, how many runs it holds.

The demo has a store of its own (``.dealledger/demo.sqlite`` unless told otherwise),
never the one ``serve`` and ``keys`` use, and it marks the stores it creates: it
replaces or appends to a marked store only, unless forced.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from domain.partner import Partner
from infra.bootstrap import Wiring
from infra.demo.report import command_id, stored_events
from infra.settings import Settings
from infra.store.databases import read_model_path

DEMO_STORE = Path(".dealledger") / "demo.sqlite"
# A table only the demo creates: its mark on the stores it may replace.
DEMO_MARKER = "dealledger_demo_store"


class DemoRefused(Exception):
    """The demo will not touch this store: it did not create it."""


def _remove_store(path: Path) -> None:
    """The event store and the read models fed from it go together."""
    for store in (path, read_model_path(path)):
        for suffix in ("", "-wal", "-shm", "-journal"):
            store.with_name(store.name + suffix).unlink(missing_ok=True)


def is_demo_store(path: Path) -> bool:
    """Whether the demo created this SQLite file (read without changing it)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            return bool(
                conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (DEMO_MARKER,),
                ).fetchone()[0]
            )
    except sqlite3.DatabaseError:
        return False


def _mark_demo_store(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {DEMO_MARKER} (created_at TEXT NOT NULL)")
        conn.execute(f"INSERT INTO {DEMO_MARKER} VALUES (?)", (datetime.now(UTC).isoformat(),))


def claim_store(path: Path, *, fresh: bool, force: bool) -> None:
    """Refuse a store the demo did not create (unless forced); make way for a fresh run."""
    if path.exists() and not force and not is_demo_store(path):
        raise DemoRefused(
            f"{path} was not created by the demo; it may hold real data. Name another "
            "path with --store, or pass --force to "
            + ("add to it anyway." if not fresh else "delete and replace it.")
        )
    orphan = read_model_path(path)
    if not path.exists() and orphan.exists() and not force:
        raise DemoRefused(
            f"{orphan} exists without its event store {path}; remove it, name another "
            "path with --store, or pass --force"
        )
    if fresh:
        _remove_store(path)
    if not path.exists():
        _mark_demo_store(path)


def previous_runs(settings: Settings) -> tuple[int, datetime | None]:
    """How many demo runs the store already holds, and when its last event happened."""
    runs = 0
    last: datetime | None = None
    probe = Wiring(settings)
    try:
        for event in stored_events(probe.ledger()):
            if isinstance(event, Partner.Onboarded) and command_id(event).startswith("demo"):
                runs += command_id(event).endswith(":onboard-northwind")
            stamp = getattr(event, "timestamp", None)
            if isinstance(stamp, datetime):
                last = stamp if last is None else max(last, stamp)
    finally:
        probe.close()
    return runs, last
