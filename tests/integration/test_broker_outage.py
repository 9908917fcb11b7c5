"""Stopping the Kafka broker mid-load: commands keep being stored; afterwards the
relay catches up and the read models converge on a rebuild from the event store."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from consumers.projector_host import ProjectorHost
from consumers.rebuild import rebuild_from_store
from domain.clock import ManualClock
from infra.bootstrap import build_ledger
from infra.kafka.relay import Relay
from infra.logging import get_logger
from infra.settings import Settings
from projections.read_models import dump_tables
from projections.store import ReadStore
from tests.integration.flow import (
    ROOT,
    drop_schema,
    isolated_settings,
    projector_caught_up,
    wait_until,
)
from tests.integration.workload import Workload

LOG = get_logger("test")
KAFKA_SCRIPT = Path(ROOT) / "infra" / "services" / "kafka.sh"


def our_broker_is_running() -> bool:
    pidfile = Path(ROOT) / ".run" / "kafka.pid"
    if os.environ.get("DEALLEDGER_KAFKA_BOOTSTRAP") or not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def kafka_script(action: str) -> None:
    subprocess.run(["bash", str(KAFKA_SCRIPT), action], check=True, timeout=180, cwd=ROOT)


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    if not our_broker_is_running():
        # Stopping someone else's broker is not ours to do; `make test` starts its own.
        pytest.skip("the broker was not started by infra/services/kafka.sh; not stopping it")
    settings = isolated_settings(database_url, kafka_bootstrap)
    yield settings
    drop_schema(settings)


def test_commands_are_stored_while_kafka_is_down_and_read_models_converge_after(
    settings: Settings,
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    relay = Relay(build_ledger(settings), settings, get_logger("relay"), batch_size=100)
    host = ProjectorHost(settings, get_logger("projector"))
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=relay.run, args=(stops[0],), daemon=True),
        threading.Thread(target=host.run, args=(stops[1],), daemon=True),
    ]
    for thread in threads:
        thread.start()
    status = Relay(build_ledger(settings), settings, LOG)
    try:
        workload = Workload(ledger, clock, seed=31)
        workload.onboard()
        while workload.sent < 200:
            workload.step()
        wait_until("the relay to publish before the outage", lambda: status.status().lag == 0, 60)

        kafka_script("down")
        try:
            stored_before = ledger.recorder.max_notification_id() or 0
            while workload.sent < 500:
                workload.step()  # any error but a domain refusal fails the test
            stored_during = ledger.recorder.max_notification_id() or 0
            assert stored_during > stored_before
            assert status.status().lag == stored_during - status.status().published > 0
        finally:
            kafka_script("up")

        wait_until(
            "relay and projector to catch up after the outage",
            lambda: projector_caught_up(settings, status),
            240,
        )
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(30)
        status.close()
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        live = dump_tables(ReadStore(conn, "postgres"))
    rebuild_from_store(settings, ledger, ("pipeline", "attribution", "registration_queue"), LOG)
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        assert dump_tables(ReadStore(conn, "postgres")) == live
