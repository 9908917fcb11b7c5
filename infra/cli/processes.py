"""The long-running processes: relay, projectors, command consumer, HTTP API, sweeper."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from infra.cli.session import require, session, stop_on_signals

app = typer.Typer()

Host = Annotated[str, typer.Option(help="the address to listen on")]
Port = Annotated[int, typer.Option(help="the port to listen on")]


@app.command()
def relay(
    once: Annotated[bool, typer.Option("--once", help="publish what is there, then exit")] = False,
    status: Annotated[
        bool, typer.Option("--status", help="print the relay's lag and exit")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(help="stored events read per page (default: 5,000)")
    ] = None,
) -> None:
    """publish stored events to Kafka (long-running)"""
    with session("relay") as wiring:
        require(wiring.settings, database=True, kafka=not status)
        publisher = wiring.relay(batch_size=batch_size)
        if status:
            lag = publisher.status()
            print(f"stored head {lag.head}  published {lag.published}  lag {lag.lag}")
        elif once:
            lag = publisher.drain()
            print(f"published up to {lag.published}; lag {lag.lag}")
        else:
            publisher.run(stop_on_signals())


@app.command()
def project(
    status: Annotated[bool, typer.Option("--status", help="print consumer lag and exit")] = False,
) -> None:
    """run the read-model projectors (long-running)"""
    with session("project") as wiring:
        require(wiring.settings, database=True, kafka=True)
        host = wiring.projector()
        if not status:
            host.run(stop_on_signals())
            return
        lag = host.lag()
        for partition, behind in lag.items():
            print(f"partition {partition}: {behind} behind")
        print(f"total lag {sum(lag.values())}")


@app.command("command-consumer")
def command_consumer(
    trust_key_ids: Annotated[
        bool,
        typer.Option(
            "--trust-key-ids",
            help="accept a bare key_id (only when the broker authenticates the topic's producers)",
        ),
    ] = False,
) -> None:
    """execute commands from the Kafka command topic (long-running)"""
    with session("command-consumer") as wiring:
        require(wiring.settings, database=True, kafka=True)
        wiring.command_consumer(trust_key_ids=trust_key_ids).run(stop_on_signals())


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """run the HTTP API (uvicorn)"""
    with session("serve") as wiring:
        # Imported here, not at the top: for start-up time (the web framework loads
        # only in the process that serves it).
        from infra.http.server import serve as serve_http

        settings = wiring.settings
        where = (
            "PostgreSQL" if settings.uses_postgres else f"the embedded store {settings.sqlite_path}"
        )
        print(f"Deal Ledger API on http://{host}:{port} ({where}); docs at /docs", flush=True)
        serve_http(wiring, host=host, port=port)


@app.command()
def sweep(
    every: Annotated[
        float | None, typer.Option(help="repeat every N seconds until stopped")
    ] = None,
) -> None:
    """expire lapsed channel protections"""
    with session("sweep") as wiring:
        # Imported here, not at the top: for start-up time (the command models load
        # pydantic and the whole domain, logging loads structlog).
        from commands.models import ActorIn, ExpireProtections
        from domain.values import Actor
        from infra.logging import get_logger

        ledger = wiring.ledger()
        log = get_logger("sweeper")
        stop = stop_on_signals()
        while True:
            outcome = ledger.execute(
                ExpireProtections(
                    command_id=f"sweep-{uuid.uuid4()}", actor=ActorIn.of(Actor.system("sweeper"))
                )
            )
            log.info("sweep done", expired=len(outcome.result["expired"]))
            if every is None or stop.wait(every):
                return
