"""The read side from the command line: rebuild read models, write event schemas."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from infra.cli.session import require, require_store, session
from projections.read_models import PROJECTION_NAMES

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

    from infra.settings import Settings

app = typer.Typer()


def _projection(name: str) -> str:
    """`rebuild` offers the read models the projections define."""
    if name not in PROJECTION_NAMES:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(PROJECTION_NAMES)}")
    return name


@app.command()
def rebuild(
    projection: Annotated[
        str | None,
        typer.Argument(
            parser=_projection,
            metavar="PROJECTION",
            help=f"one of {', '.join(PROJECTION_NAMES)} (default: all of them)",
            show_default=False,
            autocompletion=lambda: PROJECTION_NAMES,
        ),
    ] = None,
    source: Annotated[
        Literal["auto", "kafka", "store"],
        typer.Option(
            "--from",
            help="replay the Kafka topic or the event store (auto: Kafka when reachable)",
        ),
    ] = "auto",
) -> None:
    """drop and rebuild read models from the start"""
    with session("rebuild") as wiring:
        # Imported here, not at the top: for start-up time (the rebuild loads the
        # projectors, Kafka and PostgreSQL clients).
        from consumers import rebuild as rebuilding
        from infra.logging import get_logger

        settings = wiring.settings
        log = get_logger("rebuild")
        projections = (projection,) if projection else PROJECTION_NAMES
        if not settings.uses_postgres:
            # Embedded: the read models are SQLite files fed from the store beside them.
            if source == "kafka":
                require(settings, database=True)
            require_store(wiring)
            with _progress_bar() as progress:
                count = rebuilding.rebuild_embedded_from_store(
                    settings, wiring.ledger(), projections, log, progress
                )
            print(
                f"rebuilt {', '.join(projections)} from the embedded store: {count} events applied"
            )
            return
        chosen = source
        if chosen == "auto":
            reachable = settings.bootstrap_servers and _kafka_reachable(settings)
            chosen = "kafka" if reachable else "store"
        if chosen == "kafka":
            require(settings, kafka=True)
        with _progress_bar() as progress:
            if chosen == "kafka":
                count = rebuilding.rebuild_from_kafka(settings, projections, log, progress)
            else:
                count = rebuilding.rebuild_from_store(
                    settings, wiring.ledger(), projections, log, progress
                )
        print(f"rebuilt {', '.join(projections)} from {chosen}: {count} events applied")


@contextmanager
def _progress_bar() -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error with rate and time left; when standard error
    is not a terminal, rich draws it once, as one line, when the rebuild ends."""
    # Imported here, not at the top: for start-up time (only a rebuild draws one).
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class EventRate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None and task.elapsed:
                speed = task.completed / task.elapsed
            return Text("" if speed is None else f"{speed:,.0f} events/s", "progress.data.speed")

    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        EventRate(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("replaying", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if done >= total:
                # Done: draw the bar's last state now, before the rebuild logs its end
                # (the log writes to stderr past rich, and would land inside the bar).
                bar.stop()

        yield advance


def _kafka_reachable(settings: Settings) -> bool:
    # Imported here, not at the top: for start-up time (kafka-python is loaded only
    # when a rebuild has to choose its source).
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=5000
        ).close()
    except KafkaError:
        return False
    return True


@app.command()
def schemas(
    out: Annotated[str, typer.Option(help="the directory to write them to")] = "docs/events",
    asyncapi: Annotated[
        str, typer.Option(help="where to write the AsyncAPI document of every topic")
    ] = "docs/asyncapi.json",
) -> None:
    """write the JSON Schema of every event type and the AsyncAPI document"""
    with session("schemas"):
        # Imported here, not at the top: for start-up time (the schemas are built
        # from every event class).
        from infra.kafka.asyncapi import write_asyncapi
        from projections.contract.schemas import write_schemas

        written = write_schemas(Path(out))
        print(f"wrote {len(written)} files to {out}")
        print(f"wrote {write_asyncapi(Path(asyncapi))}")
