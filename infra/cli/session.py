"""What every `dealledger` command shares: its settings, logging and `Wiring`, and how
the errors it may end with become a message and an exit code."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from domain.errors import DomainError

if TYPE_CHECKING:
    from infra.bootstrap import Wiring
    from infra.settings import Settings


class UsageError(Exception):
    """The command cannot run with this configuration; said plainly, exit code 2."""


def _fail(message: str, code: int) -> NoReturn:
    print(message, file=sys.stderr)
    raise typer.Exit(code)


@contextmanager
def session(command: str) -> Iterator[Wiring]:
    """The command's `Wiring`, built from `Settings` and closed when the command ends.

    UsageError and StoreMissing exit 2 and DomainError exits 1, each with one line on
    standard error that names the command; a reader that left (`| head`) is no error.
    """
    # Imported here, not at the top: for start-up time. `--help` and argument errors
    # need none of them, and the composition root loads the whole write side.
    from infra.audit.checkpoints import KeyProblem
    from infra.bootstrap import StoreMissing, Wiring
    from infra.logging import configure_logging
    from infra.settings import Settings

    try:
        settings = Settings()
    except ValueError as exc:
        _fail(f"dealledger: invalid configuration: {exc}", 2)
    configure_logging(settings.log_format, settings.log_level)
    wiring = Wiring(settings)
    try:
        yield wiring
    except (UsageError, StoreMissing, KeyProblem) as exc:
        _fail(f"dealledger {command}: {exc}", 2)
    except DomainError as exc:
        _fail(f"dealledger {command}: {exc.code}: {exc.message}", 1)
    except BrokenPipeError:
        # The reader (e.g. `head`) left; that is not an error of ours.
        sys.stderr.close()
        raise typer.Exit(0) from None
    finally:
        wiring.close()


def require_store(wiring: Wiring, *, events: bool = True) -> None:
    """The embedded store must exist already: commands that only read create none."""
    # Imported here, not at the top: for start-up time (see `session`).
    from infra.bootstrap import require_embedded_store

    require_embedded_store(wiring.settings, events=events)


def require(settings: Settings, *, database: bool = False, kafka: bool = False) -> None:
    if database and not settings.uses_postgres:
        raise UsageError("this command needs PostgreSQL: set DEALLEDGER_DATABASE_URL")
    if kafka and not settings.bootstrap_servers:
        raise UsageError("this command needs Kafka: set DEALLEDGER_KAFKA_BOOTSTRAP")


def stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT ask the loop to finish its current batch and stop."""
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
