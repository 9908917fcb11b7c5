"""The auditor's commands: a deal's history, hash-chain verification, audit bundles."""

from __future__ import annotations

import shlex
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from infra.cli.session import UsageError, require_store, session

app = typer.Typer()


def _deal_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a deal id (a UUID)") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a whole number") from None
    if value < 1:
        raise typer.BadParameter(f"{text!r} must be 1 or more")
    return value


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO-8601 time") from None
    if moment.utcoffset() is None:
        raise typer.BadParameter(f"{text!r} needs a UTC offset, e.g. 2026-03-01T12:00Z")
    return moment


DealId = Annotated[uuid.UUID, typer.Argument(parser=_deal_id, metavar="DEAL_ID")]


@app.command()
def history(
    deal_id: DealId,
    fmt: Annotated[
        Literal["table", "jsonl", "csv"] | None,
        typer.Option(
            "--format",
            help="default: table on a terminal, JSON Lines otherwise",
            show_default=False,
        ),
    ] = None,
    as_of: Annotated[
        datetime | None, typer.Option(parser=_moment, help="state at this time (ISO-8601)")
    ] = None,
    version: Annotated[
        int | None, typer.Option(parser=_positive, help="state at this deal version")
    ] = None,
    after: Annotated[int, typer.Option(help="page: after this position")] = 0,
    limit: Annotated[int | None, typer.Option(help="page: at most this many events")] = None,
) -> None:
    """a deal's full history, or its state as of"""
    with session("history") as wiring:
        # Imported here, not at the top: for start-up time (replaying history loads
        # the whole write side).
        from infra.audit import api
        from infra.audit.render import print_history, print_state

        require_store(wiring)
        ledger = wiring.ledger()
        shown = fmt or ("table" if sys.stdout.isatty() else "jsonl")
        if as_of is not None or version is not None:
            state = api.state_as_of(ledger, deal_id, as_of=as_of, version=version)
            print_state(state, shown)
        else:
            print_history(api.history(ledger, deal_id, after_position=after, limit=limit), shown)


@app.command()
def verify(
    deal_id: Annotated[
        uuid.UUID | None, typer.Argument(parser=_deal_id, metavar="DEAL_ID", show_default=False)
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="every stream in the store")] = False,
) -> None:
    """recompute hash chains; non-zero if altered"""
    with session("verify") as wiring:
        # Imported here, not at the top: for start-up time (see `history`).
        from infra.audit import api

        if deal_id is None and not every:
            raise UsageError("name a DEAL_ID or pass --all")
        require_store(wiring)
        report = api.verify(wiring.ledger(), None if every else deal_id)
        if report.problems:
            print(f"BROKEN: {report.problems[0]}")
            for problem in report.problems[1:]:
                print(f"        {problem}")
            raise typer.Exit(1)
        unsealed = f"; {report.unsealed} events predate hash chaining" if report.unsealed else ""
        if report.unpositioned:
            unsealed += (
                f"; {report.unpositioned} events were hashed before ledger positions were "
                "(their positions are checked for order only)"
            )
        print(f"OK: {report.events} events in {report.streams} streams chain intact{unsealed}")
        if deal_id is not None:
            for stream, (version, digest) in sorted(
                report.heads.items(), key=lambda kv: str(kv[0])
            ):
                print(f"  head {stream} v{version} {digest}")


@app.command()
def export(
    deal_id: DealId,
    out: Annotated[str, typer.Option(help="the bundle to write (a zip file)")],
) -> None:
    """write a self-contained audit bundle (zip)"""
    with session("export") as wiring:
        # Imported here, not at the top: for start-up time (see `history`).
        from infra.audit.export import export_deal
        from infra.audit.store import AuditStore

        require_store(wiring)
        manifest = export_deal(AuditStore(wiring.ledger()), deal_id, Path(out))
        # The bundle runs its own checker (its __main__.py); see docs/auditing.md for
        # checking it with a copy you trust instead.
        print(
            f"wrote {out}: {manifest['event_count']} events in "
            f"{len(manifest['streams'])} streams (check: python3 {shlex.quote(out)})"
        )
