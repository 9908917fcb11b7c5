"""The `dealledger` command line: one entry point for every process.

Each command group lives in a module of its own; this one puts them together under
one root and runs it. A command gets its settings, logging and `Wiring` from
`infra.cli.session`, which also turns the errors it may end with into a one-line
message and an exit code (2 for usage, 1 for a refused command).
"""

from __future__ import annotations

from collections.abc import Sequence

import typer
import typer.main

from infra.cli import audit, demo, keys, privacy, processes, read_models, signing

app = typer.Typer(
    name="dealledger",
    help="Event-sourced ledger for deal management in partner ecosystems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(demo.app)
app.add_typer(processes.app)
app.add_typer(read_models.app)
app.add_typer(audit.app)
app.add_typer(privacy.app)
app.add_typer(keys.app, name="keys")
app.add_typer(signing.app, name="signing-key")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command and returns its exit code (the console script exits with it)."""
    command = typer.main.get_command(app)
    try:
        command.main(
            args=None if argv is None else list(argv), prog_name="dealledger", standalone_mode=True
        )
    except SystemExit as exc:
        # Standalone mode ends every run, its errors included, with sys.exit.
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0
