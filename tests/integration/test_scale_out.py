"""The read side grows sideways and rebuilds without stopping (invariants I4 and I6,
docs/architecture.md): several `dealledger project` processes share the partitions of
one consumer group, one of them dies mid-load, and the read models still equal a
rebuild; a rebuild runs while the projector is live and under load, and the read
models still end equal to a rebuild."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient

from consumers.rebuild import rebuild_from_kafka, rebuild_from_store
from domain.clock import ManualClock
from infra.bootstrap import Wiring, build_ledger
from infra.logging import get_logger
from infra.settings import Settings
from projections.read_models import PROJECTION_NAMES, dump_tables
from projections.store import ReadStore
from tests.integration.flow import (
    drop_schema,
    isolated_settings,
    projector_caught_up,
    start_cli,
    wait_until,
)
from tests.integration.workload import Workload

LOG = get_logger("test")


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = isolated_settings(database_url, kafka_bootstrap, topic_partitions=6)
    yield settings
    drop_schema(settings)


def read_models(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.psycopg_conninfo()) as conn:
        return dump_tables(ReadStore(conn, "postgres"))


def caught_up(settings: Settings) -> None:
    wiring = Wiring(settings)
    try:
        relay = wiring.relay()
        wait_until("the projectors to catch up", lambda: projector_caught_up(settings, relay), 240)
    finally:
        wiring.close()


def group_members(settings: Settings) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        group = admin.describe_groups([settings.projector_group])[settings.projector_group]
        return len(group["members"])
    finally:
        admin.close()


def test_three_projectors_share_the_partitions_and_survive_losing_one(
    settings: Settings, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    workload = Workload(ledger, clock, seed=31)
    workload.onboard()
    log = tmp_path / "processes.log"
    relay = start_cli(settings, "relay", log=log)
    projectors = [start_cli(settings, "project", log=log) for _ in range(3)]
    try:
        wait_until("three projectors in the group", lambda: group_members(settings) == 3, 90)
        while workload.sent < 600:
            workload.step()
        projectors[0].send_signal(signal.SIGKILL)  # mid-load, a batch possibly in hand
        projectors[0].wait(10)
        while workload.sent < 1200:
            workload.step()
        caught_up(settings)
        assert group_members(settings) == 2
    finally:
        for process in (relay, *projectors):
            process.terminate()
            try:
                process.wait(20)
            except Exception:
                process.kill()
    live = read_models(settings)
    assert len(live["rm_pipeline_deal"]) == len(workload.deals) > 20
    rebuild_from_store(settings, ledger, PROJECTION_NAMES, LOG)
    assert read_models(settings) == live, log.read_text()[-3000:]


def test_a_rebuild_beside_a_live_projector_under_load_ends_equal_to_a_rebuild(
    settings: Settings, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    workload = Workload(ledger, clock, seed=47)
    workload.onboard()
    while workload.sent < 400:
        workload.step()
    log = tmp_path / "processes.log"
    relay = start_cli(settings, "relay", log=log)
    projector = start_cli(settings, "project", log=log)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and workload.sent < 2500:
            workload.step()

    writer = threading.Thread(target=load, daemon=True)
    try:
        caught_up(settings)
        writer.start()
        time.sleep(1.0)  # the projector is busy with new events when the rebuilds start
        rebuild_from_kafka(settings, ["pipeline", "attribution"], LOG)
        rebuild_from_store(settings, ledger, ["registration_queue"], LOG)
        assert writer.is_alive() or workload.sent >= 2500
        writer.join(120)
        caught_up(settings)
    finally:
        stop.set()
        writer.join(30)
        for process in (relay, projector):
            process.terminate()
            try:
                process.wait(20)
            except Exception:
                process.kill()
    live = read_models(settings)
    assert len(live["rm_pipeline_deal"]) == len(workload.deals) > 50
    rebuild_from_store(settings, ledger, PROJECTION_NAMES, LOG)
    assert read_models(settings) == live, log.read_text()[-3000:]
