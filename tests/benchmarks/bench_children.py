"""Subprocesses of the benchmarks, each configured by DEALLEDGER_* variables:

    python -m tests.benchmarks.bench_children relay
    python -m tests.benchmarks.bench_children project GROUP
    python -m tests.benchmarks.bench_children project-memory GROUP EVENTS CHECKPOINTS SECONDS
    python -m tests.benchmarks.bench_children raw-memory EVENTS CHECKPOINTS SECONDS

`relay` and `project` run the real relay and projector until SIGTERM (the batch in
hand is finished first). The `*-memory` modes consume EVENTS messages from the events
topic and print one JSON line per checkpoint with this process's peak RSS, and a last
line when they stop (at EVENTS, or after SECONDS with what they consumed by then).
`raw-memory` imports nothing but kafka-python and json, so its footprint is the raw
consumer's own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any


def memory_kb() -> dict[str, int]:
    """This process's peak (VmHWM) and current (VmRSS) resident set size, in KiB."""
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    if "VmHWM" not in found:
        import resource

        found["VmHWM"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return {"peak_kb": found["VmHWM"], "rss_kb": found.get("VmRSS", found["VmHWM"])}


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def _report(events: int, start: float, **extra: Any) -> None:
    line = {"events": events, "seconds": round(time.monotonic() - start, 3), **memory_kb(), **extra}
    print(json.dumps(line), flush=True)


def _checkpoints(events: int, count: int) -> list[int]:
    return sorted({max(1, events * n // count) for n in range(1, count + 1)})


def run_relay() -> None:
    from infra.bootstrap import build_ledger
    from infra.kafka.relay import Relay
    from infra.settings import Settings
    from tests.benchmarks.bench_common import LOG

    stop = _stop_on_sigterm()
    settings = Settings()
    ledger = build_ledger(settings)
    relay = Relay(ledger, settings, LOG)
    try:
        relay.run(stop)  # closes the relay when stopped
    finally:
        ledger.close()


def run_projector(group: str) -> None:
    from consumers.projector_host import ProjectorHost
    from infra.settings import Settings
    from tests.benchmarks.bench_common import LOG

    stop = _stop_on_sigterm()
    ProjectorHost(Settings(), LOG, group_id=group).run(stop)  # closes itself when stopped


def project_memory(group: str, events: int, checkpoints: int, seconds: float) -> None:
    from consumers.projector_host import ProjectorHost
    from infra.settings import Settings
    from tests.benchmarks.bench_common import LOG

    stop = _stop_on_sigterm()
    marks = _checkpoints(events, checkpoints)
    host = ProjectorHost(Settings(), LOG, group_id=group)
    start = time.monotonic()
    done = 0
    try:
        while marks and not stop.is_set() and time.monotonic() - start < seconds:
            done += host.poll_once(timeout_ms=1000)
            while marks and done >= marks[0]:
                marks.pop(0)
                _report(done, start, applied=host.applied, skipped=host.skipped)
        _report(done, start, applied=host.applied, skipped=host.skipped, final=True)
    finally:
        host.close()


def raw_memory(events: int, checkpoints: int, seconds: float) -> None:
    from kafka import KafkaConsumer, TopicPartition

    stop = _stop_on_sigterm()
    topic = os.environ["DEALLEDGER_EVENTS_TOPIC"]
    marks = _checkpoints(events, checkpoints)
    consumer = KafkaConsumer(
        bootstrap_servers=os.environ["DEALLEDGER_KAFKA_BOOTSTRAP"].split(","),
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=500,
    )
    start = time.monotonic()
    done = 0
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        while marks and not stop.is_set() and time.monotonic() - start < seconds:
            for records in consumer.poll(timeout_ms=1000, max_records=500).values():
                for record in records:
                    json.loads(record.value)
                    done += 1
            while marks and done >= marks[0]:
                marks.pop(0)
                _report(done, start)
        _report(done, start, final=True)
    finally:
        consumer.close()


def main(argv: list[str]) -> int:
    mode, rest = (argv[0], argv[1:]) if argv else ("", [])
    if mode == "relay":
        run_relay()
    elif mode == "project":
        run_projector(rest[0])
    elif mode == "project-memory":
        project_memory(rest[0], int(rest[1]), int(rest[2]), float(rest[3]))
    elif mode == "raw-memory":
        raw_memory(int(rest[0]), int(rest[1]), float(rest[2]))
    else:
        print(f"unknown mode {mode!r}\n{__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
