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
from infra.bootstrap import StoreMissing, Wiring, require_embedded_store
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


def _cmd_demo(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    from infra.demo import DEMO_STORE, DemoRefused, run_demo

    store = Path(args.store) if args.store else DEMO_STORE
    try:
        code = run_demo(settings, store, fresh=not args.keep, force=args.force)
    except DemoRefused as exc:
        raise UsageError(str(exc)) from None
    if code == 0 and args.serve:
        from infra.http.server import serve

        demo_settings = settings.model_copy(
            update={"database_url": None, "kafka_bootstrap": None, "sqlite_path": store}
        )
        print(
            f"\nServing the demo store {store.resolve()} on http://{args.host}:{args.port} "
            "(Ctrl-C stops it)"
        )
        demo = Wiring(demo_settings)
        try:
            serve(demo, host=args.host, port=args.port)
        finally:
            demo.close()
    return code


def _cmd_relay(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    _require(settings, database=True, kafka=not args.status)
    relay = wiring.relay(batch_size=args.batch_size)
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


def _cmd_command_consumer(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    _require(settings, database=True, kafka=True)
    consumer = wiring.command_consumer(trust_key_ids=args.trust_key_ids)
    consumer.run(_stop_on_signals())
    return 0


def _cmd_project(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    _require(settings, database=True, kafka=True)
    host = wiring.projector()
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


def _cmd_rebuild(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    from consumers import rebuild

    log = get_logger("rebuild")
    projections = (args.projection,) if args.projection else PROJECTION_CHOICES
    source = args.source
    if not settings.uses_postgres:
        # Embedded: the read models are SQLite files fed from the store beside them.
        if source == "kafka":
            _require(settings, database=True)
        require_embedded_store(settings)
        source = "store"
        count = rebuild.rebuild_embedded_from_store(
            settings, wiring.ledger(), projections, log, _progress
        )
        sys.stderr.write("\n")
        print(f"rebuilt {', '.join(projections)} from the embedded store: {count} events applied")
        return 0
    if source == "auto":
        source = "kafka" if settings.bootstrap_servers and _kafka_reachable(settings) else "store"
    if source == "kafka":
        _require(settings, kafka=True)
        count = rebuild.rebuild_from_kafka(settings, projections, log, _progress)
    else:
        count = rebuild.rebuild_from_store(settings, wiring.ledger(), projections, log, _progress)
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


def _cmd_schemas(args: argparse.Namespace, wiring: Wiring) -> int:
    from projections.contract.schemas import write_schemas

    written = write_schemas(Path(args.out))
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def _cmd_sweep(args: argparse.Namespace, wiring: Wiring) -> int:
    import uuid

    from commands.models import ActorIn, ExpireProtections
    from domain.values import Actor

    ledger = wiring.ledger()
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


def _parse_uuid(text: str) -> Any:
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a deal id (a UUID)") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _parse_time(text: str) -> Any:
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time") from None
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. 2026-03-01T12:00Z")
    return moment


def _cmd_history(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    from infra.audit import api
    from infra.audit.render import print_history, print_state

    require_embedded_store(settings)
    ledger = wiring.ledger()
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    if args.as_of is not None or args.version is not None:
        state = api.state_as_of(ledger, args.deal_id, as_of=args.as_of, version=args.version)
        print_state(state, fmt)
    else:
        print_history(
            api.history(ledger, args.deal_id, after_position=args.after, limit=args.limit),
            fmt,
        )
    return 0


def _cmd_verify(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    from infra.audit import api

    if args.deal_id is None and not args.all:
        raise UsageError("name a DEAL_ID or pass --all")
    require_embedded_store(settings)
    report = api.verify(wiring.ledger(), None if args.all else args.deal_id)
    if report.problems:
        print(f"BROKEN: {report.problems[0]}")
        for problem in report.problems[1:]:
            print(f"        {problem}")
        return 1
    unsealed = f"; {report.unsealed} events predate hash chaining" if report.unsealed else ""
    if report.unpositioned:
        unsealed += (
            f"; {report.unpositioned} events were hashed before ledger positions were "
            "(their positions are checked for order only)"
        )
    print(f"OK: {report.events} events in {report.streams} streams chain intact{unsealed}")
    for stream, (version, digest) in sorted(report.heads.items(), key=lambda kv: str(kv[0])):
        if args.deal_id is not None:
            print(f"  head {stream} v{version} {digest}")
    return 0


def _cmd_export(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    import shlex

    from infra.audit.export import export_deal
    from infra.audit.store import AuditStore

    require_embedded_store(settings)
    manifest = export_deal(AuditStore(wiring.ledger()), args.deal_id, Path(args.out))
    # The bundle runs its own checker (its __main__.py); see docs/auditing.md for
    # checking it with a copy you trust instead.
    print(
        f"wrote {args.out}: {manifest['event_count']} events in "
        f"{len(manifest['streams'])} streams (check: python3 {shlex.quote(args.out)})"
    )
    return 0


def _cmd_serve(args: argparse.Namespace, wiring: Wiring) -> int:
    settings = wiring.settings
    from infra.http.server import serve

    where = "PostgreSQL" if settings.uses_postgres else f"the embedded store {settings.sqlite_path}"
    print(f"Deal Ledger API on http://{args.host}:{args.port} ({where}); docs at /docs", flush=True)
    serve(wiring, host=args.host, port=args.port)
    return 0


def _key_actor(args: argparse.Namespace) -> Any:
    from domain.values import Actor, Role

    if args.partner:
        return Actor.partner(args.partner)
    if not args.user or not args.role:
        raise UsageError("give --partner CODE, or --user NAME with --role ROLE")
    return Actor.user(args.user, Role(args.role))


def _cmd_keys(args: argparse.Namespace, wiring: Wiring) -> int:
    if args.keys_command != "create":
        require_embedded_store(wiring.settings, events=False)
    store = wiring.key_store()
    if args.keys_command == "create":
        actor = _key_actor(args)
        if actor.kind.value == "partner":
            _warn_unknown_partner(wiring, actor.id)
        key = store.create(actor, args.label)
        print(key)
        print(
            f"API key for {actor} (id {key.split('_')[1]}). It is shown this once; "
            "only its hash is stored.",
            file=sys.stderr,
        )
    elif args.keys_command == "list":
        for stored in store.list():
            state = (
                "revoked " + f"{stored.revoked_at:%Y-%m-%d %H:%M}"
                if stored.revoked_at
                else "active"
            )
            print(
                f"{stored.key_id}  {stored.actor!s:<36} {state:<24} "
                f"{stored.created_at:%Y-%m-%d %H:%M}  {stored.label}"
            )
    elif not store.revoke(args.key_id):
        print(f"dealledger keys revoke: no active key {args.key_id}", file=sys.stderr)
        return 1
    else:
        print(f"revoked {args.key_id}")
    return 0


def _warn_unknown_partner(wiring: Wiring, partner_code: str) -> None:
    try:
        wiring.ledger().get_partner(partner_code)
    except DomainError:
        print(f"note: partner {partner_code} is not onboarded (yet)", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dealledger",
        description="Event-sourced ledger for deal management in partner ecosystems.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the scripted scenario on a demo store of its own")
    demo.add_argument(
        "--store",
        metavar="PATH",
        help="the demo's SQLite store (default .dealledger/demo.sqlite; never "
        "DEALLEDGER_SQLITE_PATH)",
    )
    demo.add_argument("--keep", action="store_true", help="add another run to the demo store")
    demo.add_argument(
        "--force",
        action="store_true",
        help="replace (or with --keep, add to) a store the demo did not create",
    )
    demo.add_argument(
        "--serve", action="store_true", help="then serve the HTTP API on the demo's store"
    )
    demo.add_argument("--host", default="127.0.0.1", help="with --serve")
    demo.add_argument("--port", type=int, default=8000, help="with --serve")
    demo.set_defaults(handler=_cmd_demo)

    relay = sub.add_parser("relay", help="publish stored events to Kafka (long-running)")
    relay.add_argument("--once", action="store_true", help="publish what is there, then exit")
    relay.add_argument("--status", action="store_true", help="print the relay's lag and exit")
    relay.add_argument("--batch-size", type=int, default=1000)
    relay.set_defaults(handler=_cmd_relay)

    project = sub.add_parser("project", help="run the read-model projectors (long-running)")
    project.add_argument("--status", action="store_true", help="print consumer lag and exit")
    project.set_defaults(handler=_cmd_project)

    command_consumer = sub.add_parser(
        "command-consumer", help="execute commands from the Kafka command topic (long-running)"
    )
    command_consumer.add_argument(
        "--trust-key-ids",
        action="store_true",
        help="accept a bare key_id (only when the broker authenticates the topic's producers)",
    )
    command_consumer.set_defaults(handler=_cmd_command_consumer)

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

    history = sub.add_parser("history", help="a deal's full history, or its state as of")
    history.add_argument("deal_id", type=_parse_uuid, metavar="DEAL_ID")
    history.add_argument(
        "--format",
        choices=("table", "jsonl", "csv"),
        help="default: table on a terminal, JSON Lines otherwise",
    )
    history.add_argument("--as-of", type=_parse_time, help="state at this time (ISO-8601)")
    history.add_argument("--version", type=_positive, help="state at this deal version")
    history.add_argument("--after", type=int, default=0, help="page: after this position")
    history.add_argument("--limit", type=int, help="page: at most this many events")
    history.set_defaults(handler=_cmd_history)

    verify = sub.add_parser("verify", help="recompute hash chains; non-zero if altered")
    verify.add_argument("deal_id", type=_parse_uuid, nargs="?", metavar="DEAL_ID")
    verify.add_argument("--all", action="store_true", help="every stream in the store")
    verify.set_defaults(handler=_cmd_verify)

    export = sub.add_parser("export", help="write a self-contained audit bundle (zip)")
    export.add_argument("deal_id", type=_parse_uuid, metavar="DEAL_ID")
    export.add_argument("--out", required=True)
    export.set_defaults(handler=_cmd_export)

    sweep = sub.add_parser("sweep", help="expire lapsed channel protections")
    sweep.add_argument("--every", type=float, help="repeat every N seconds until stopped")
    sweep.set_defaults(handler=_cmd_sweep)

    serve = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_cmd_serve)

    keys = sub.add_parser("keys", help="create, list or revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key; printed once, stored hashed")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--partner", metavar="CODE", help="a key acting as this partner")
    who.add_argument("--user", metavar="NAME", help="a key acting as this internal user")
    create.add_argument(
        "--role", choices=("channel_manager", "sales", "auditor", "admin"), help="with --user"
    )
    create.add_argument("--label", default="", help="a note kept with the key")
    keys_sub.add_parser("list", help="every key: id, principal, state (never secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    keys.set_defaults(handler=_cmd_keys)
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
    wiring = Wiring(settings)
    try:
        code: int = args.handler(args, wiring)
    except (UsageError, StoreMissing) as exc:
        print(f"dealledger {args.command}: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"dealledger {args.command}: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader (e.g. `head`) left; that is not an error of ours.
        sys.stderr.close()
        return 0
    finally:
        wiring.close()
    return code
