"""`dealledger demo`: the scripted scenario on a store of its own, then perhaps the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli.session import UsageError, session

app = typer.Typer()


@app.command()
def demo(
    store: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="the demo's SQLite store (default .dealledger/demo.sqlite; never "
            "DEALLEDGER_SQLITE_PATH)",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="add another run to the demo store")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="replace (or with --keep, add to) a store the demo did not create"
        ),
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="then serve the HTTP API on the demo's store")
    ] = False,
    host: Annotated[str, typer.Option(help="with --serve")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="with --serve")] = 8000,
) -> None:
    """run the scripted scenario on a demo store of its own"""
    with session("demo") as wiring:
        # Imported here, not at the top: for start-up time (the demo loads the whole
        # write side and the read models).
        from infra.bootstrap import Wiring
        from infra.demo import DEMO_STORE, DemoRefused, run_demo

        settings = wiring.settings
        store = store or DEMO_STORE
        try:
            code = run_demo(settings, store, fresh=not keep, force=force)
        except DemoRefused as exc:
            raise UsageError(str(exc)) from None
        if code != 0:
            raise typer.Exit(code)
        if not serve:
            return
        demo_settings = settings.model_copy(
            update={"database_url": None, "kafka_bootstrap": None, "sqlite_path": store}
        )
        print(
            f"\nServing the demo store {store.resolve()} on http://{host}:{port} (Ctrl-C stops it)"
        )
        # Imported here, not at the top: for start-up time (the web framework loads
        # only when the demo goes on to serve).
        from infra.http.server import serve as serve_http

        served = Wiring(demo_settings)
        try:
            serve_http(served, host=host, port=port)
        finally:
            served.close()
