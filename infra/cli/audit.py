"""The auditor's commands: a deal's history, hash-chain verification, audit bundles."""

from __future__ import annotations

import shlex
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from infra.cli.session import UsageError, require_store, session

if TYPE_CHECKING:
    from infra.audit.verify import Anchors
    from infra.settings import Settings

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
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="signed checkpoints to hold the store to (JSON Lines); default: "
            "DEALLEDGER_CHECKPOINT_FILE if it exists, else the checkpoint topic",
            show_default=False,
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            help="the key the checkpoints must be signed with (base64, or a PEM file); "
            "default: DEALLEDGER_CHECKPOINT_PUBLIC_KEY, else the signing key's",
            show_default=False,
        ),
    ] = None,
) -> None:
    """recompute hash chains and the ledger tree, held to signed checkpoints kept
    outside the database; non-zero if altered"""
    with session("verify") as wiring:
        # Imported here, not at the top: for start-up time (see `history`).
        from infra.audit import api

        if deal_id is None and not every:
            raise UsageError("name a DEAL_ID or pass --all")
        require_store(wiring)
        anchored = _anchors(wiring.settings, checkpoint, public_key)
        report = api.verify(wiring.ledger(), None if every else deal_id, anchored)
        if report.problems:
            print(f"BROKEN: {report.problems[0]}")
            for problem in report.problems[1:]:
                print(f"        {problem}")
            raise typer.Exit(1)
        unsealed = f"; {report.unsealed} events predate the seal" if report.unsealed else ""
        if report.unpositioned:
            unsealed += (
                f"; {report.unpositioned} events were hashed before ledger positions were "
                "(their positions are checked for order only)"
            )
        print(f"OK: {report.events} events in {report.streams} streams chain intact{unsealed}")
        print(f"  ledger tree: {report.tree_size} events, root {report.root}")
        if report.anchored_to is not None:
            newest = report.anchored_to
            print(
                f"  consistent with the checkpoint of {newest['tree_size']} events signed "
                f"{newest['time']} by key {newest['key_id']}"
                f" ({anchored.source if anchored else ''})"
            )
        else:
            print(
                "  NOT ANCHORED: no checkpoint source (pass --checkpoint FILE, or configure "
                "Kafka or DEALLEDGER_CHECKPOINT_FILE); only the store's own consistency is "
                "shown",
                file=sys.stderr,
            )
        if deal_id is not None:
            for stream, (version, digest) in sorted(
                report.heads.items(), key=lambda kv: str(kv[0])
            ):
                print(f"  head {stream} v{version} {digest}")


def _anchors(settings: Settings, checkpoint: Path | None, public_key: str | None) -> Anchors | None:
    """The outside checkpoints `verify` holds the store to, or None when there is no
    source at all (said on stderr by the caller)."""
    from infra.audit.checkpoints import (
        KeyProblem,
        public_key_from_text,
        read_file,
        read_topic,
        trusted_public_key,
    )
    from infra.audit.verify import anchors

    source = checkpoint
    if (
        source is None
        and settings.checkpoint_file is not None
        and settings.checkpoint_file.exists()
    ):
        source = settings.checkpoint_file
    if source is None and not settings.bootstrap_servers:
        return None
    try:
        key = public_key_from_text(public_key) if public_key else trusted_public_key(settings)
    except (KeyProblem, OSError) as exc:
        raise UsageError(str(exc)) from None
    if key is None:
        if checkpoint is not None:
            raise UsageError(
                "checking checkpoints needs the public key they are signed with: pass "
                "--public-key, or set DEALLEDGER_CHECKPOINT_PUBLIC_KEY"
            )
        return None  # no key anywhere: no checkpoints to hold to (said as NOT ANCHORED)
    if source is not None:
        try:
            outside = read_file(source)
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    else:
        outside = read_topic(settings)
    return anchors(outside, key)


@app.command("checkpoint")
def checkpoint_now() -> None:
    """sign a checkpoint of the ledger tree now (file, topic and ledger)"""
    with session("checkpoint") as wiring:
        from infra.audit.checkpoints import KeyProblem, TreeAltered
        from infra.audit.signed import describe

        require_store(wiring)
        try:
            writer = wiring.checkpoint_writer()
        except KeyProblem as exc:
            raise UsageError(str(exc)) from None
        if writer is None:
            raise UsageError(
                "no signing key: set DEALLEDGER_SIGNING_KEY_FILE (make one with "
                "`dealledger signing-key create`)"
            )
        try:
            written = writer.write()
        except TreeAltered as exc:
            print(f"dealledger checkpoint: REFUSED: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None
        if written is None:
            print(f"unchanged since the {describe(writer.last or {})}")
        else:
            print(f"signed the {describe(written)}: root {written['root']}")


@app.command()
def export(
    deal_id: DealId,
    out: Annotated[str, typer.Option(help="the bundle to write (a zip file)")],
) -> None:
    """write a self-contained audit bundle (zip), anchored to a signed checkpoint"""
    with session("export") as wiring:
        # Imported here, not at the top: for start-up time (see `history`).
        from infra.audit.checkpoints import KeyProblem, TreeAltered, anchor_for_export
        from infra.audit.export import StaleCheckpoint, export_deal
        from infra.audit.store import AuditStore

        require_store(wiring)
        store = AuditStore(wiring.ledger())
        try:
            checkpoint, public_key = anchor_for_export(wiring, store)
        except KeyProblem as exc:
            raise UsageError(str(exc)) from None
        except TreeAltered as exc:
            print(f"dealledger export: REFUSED: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None
        if checkpoint is None:
            print(
                "dealledger export: no signed checkpoint (no signing key, or no "
                "DEALLEDGER_CHECKPOINT_PUBLIC_KEY): the bundle is UNSIGNED and proves "
                "neither its origin nor its completeness",
                file=sys.stderr,
            )
        try:
            manifest = export_deal(store, deal_id, Path(out), checkpoint, public_key)
        except StaleCheckpoint as exc:
            print(f"dealledger export: REFUSED: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None
        # The bundle runs its own checker (its __main__.py); see docs/auditing.md for
        # checking it with a copy you trust instead.
        print(
            f"wrote {out}: {manifest['event_count']} events in "
            f"{len(manifest['streams'])} streams (check: python3 {shlex.quote(out)})"
        )
