"""The `dealledger` command line: one entry point for every process."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domain.errors import DomainError
from infra.logging import configure_logging, get_logger
from infra.settings import Settings

PROJECTION_CHOICES = ("pipeline", "attribution", "registration_queue")


class UsageError(Exception):
    """The command cannot run with this configuration; said plainly, exit code 2."""


def _stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT ask the loop to finish its current batch and stop."""
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def _require(settings: Settings, *, database: bool = False, kafka: bool = False) -> None:
    if database and not settings.uses_postgres:
        raise UsageError("this command needs PostgreSQL: set DEALLEDGER_DATABASE_URL")
    if kafka and not settings.bootstrap_servers:
        raise UsageError("this command needs Kafka: set DEALLEDGER_KAFKA_BOOTSTRAP")


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from infra.demo import run_demo

    return run_demo(settings, fresh=not args.keep)


def _cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    from infra.bootstrap import build_ledger
    from infra.relay import Relay

    _require(settings, database=True, kafka=not args.status)
    log = get_logger("relay")
    relay = Relay(build_ledger(settings), settings, log, batch_size=args.batch_size)
    if args.status:
        status = relay.status()
        print(f"stored head {status.head}  published {status.published}  lag {status.lag}")
        relay.close()
        return 0
    if args.once:
        status = relay.drain()
        relay.close()
        print(f"published up to {status.published}; lag {status.lag}")
        return 0
    relay.run(_stop_on_signals())
    return 0


def _cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.projector_host import ProjectorHost

    _require(settings, database=True, kafka=True)
    host = ProjectorHost(settings, get_logger("projector"))
    if args.status:
        lag = host.lag()
        for partition, behind in lag.items():
            print(f"partition {partition}: {behind} behind")
        print(f"total lag {sum(lag.values())}")
        host.close()
        return 0
    host.run(_stop_on_signals())
    return 0


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width if total == 0 else min(width, width * done // max(total, 1))
    pct = 100 if total == 0 else min(100, 100 * done // max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({pct}%)")
    sys.stderr.flush()


def _cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import rebuild
    from infra.bootstrap import build_ledger

    _require(settings, database=True)
    log = get_logger("rebuild")
    projections = (args.projection,) if args.projection else PROJECTION_CHOICES
    source = args.source
    if source == "auto":
        source = "kafka" if settings.bootstrap_servers and _kafka_reachable(settings) else "store"
    if source == "kafka":
        _require(settings, kafka=True)
        count = rebuild.rebuild_from_kafka(settings, projections, log, _progress)
    else:
        count = rebuild.rebuild_from_store(
            settings, build_ledger(settings), projections, log, _progress
        )
    sys.stderr.write("\n")
    print(f"rebuilt {', '.join(projections)} from {source}: {count} events applied")
    return 0


def _kafka_reachable(settings: Settings) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=5000
        ).close()
    except KafkaError:
        return False
    return True


def _cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from infra.schemas import write_schemas

    written = write_schemas(Path(args.out))
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def _cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    import uuid

    from commands.models import ActorIn, ExpireProtections
    from domain.values import Actor
    from infra.bootstrap import build_ledger

    ledger = build_ledger(settings)
    log = get_logger("sweeper")
    stop = _stop_on_signals()
    while True:
        outcome = ledger.execute(
            ExpireProtections(
                command_id=f"sweep-{uuid.uuid4()}", actor=ActorIn.of(Actor.system("sweeper"))
            )
        )
        log.info("sweep done", expired=len(outcome.result["expired"]))
        if args.every is None or stop.wait(args.every):
            return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dealledger",
        description="Event-sourced ledger for deal management in partner ecosystems.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the scripted scenario on the embedded store")
    demo.add_argument(
        "--keep", action="store_true", help="add to the existing embedded store instead"
    )
    demo.set_defaults(handler=_cmd_demo)

    relay = sub.add_parser("relay", help="publish stored events to Kafka (long-running)")
    relay.add_argument("--once", action="store_true", help="publish what is there, then exit")
    relay.add_argument("--status", action="store_true", help="print the relay's lag and exit")
    relay.add_argument("--batch-size", type=int, default=1000)
    relay.set_defaults(handler=_cmd_relay)

    project = sub.add_parser("project", help="run the read-model projectors (long-running)")
    project.add_argument("--status", action="store_true", help="print consumer lag and exit")
    project.set_defaults(handler=_cmd_project)

    rebuild = sub.add_parser("rebuild", help="drop and rebuild read models from the start")
    rebuild.add_argument("projection", nargs="?", choices=PROJECTION_CHOICES)
    rebuild.add_argument(
        "--from",
        dest="source",
        choices=("auto", "kafka", "store"),
        default="auto",
        help="replay the Kafka topic or the event store (auto: Kafka when reachable)",
    )
    rebuild.set_defaults(handler=_cmd_rebuild)

    schemas = sub.add_parser("schemas", help="write the JSON Schema of every event type")
    schemas.add_argument("--out", default="docs/events")
    schemas.set_defaults(handler=_cmd_schemas)

    sweep = sub.add_parser("sweep", help="expire lapsed channel protections")
    sweep.add_argument("--every", type=float, help="repeat every N seconds until stopped")
    sweep.set_defaults(handler=_cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"dealledger: invalid configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    try:
        code: int = args.handler(args, settings)
    except UsageError as exc:
        print(f"dealledger {args.command}: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"dealledger {args.command}: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
