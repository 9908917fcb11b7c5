"""`dealledger erase`: a data subject's personal data, erased by destroying its keys."""

from __future__ import annotations

import sys
import uuid
from typing import Annotated, Literal

import typer

from infra.cli.session import UsageError, session

app = typer.Typer()

# Who may erase (domain.permissions.MANAGERS); other roles are named so that a
# refusal says why rather than failing as a usage error.
Role = Literal["channel_manager", "admin", "sales", "auditor"]


@app.command()
def erase(
    subject: Annotated[
        str,
        typer.Argument(
            metavar="SUBJECT",
            help="the customer's domain (customer.example), or an address at it",
        ),
    ],
    by: Annotated[str, typer.Option("--by", metavar="NAME", help="who erases (recorded)")],
    role: Annotated[Role, typer.Option(help="channel_manager or admin may erase")],
    command_id: Annotated[
        str | None,
        typer.Option(metavar="ID", help="makes a re-run a replay (default: a new id)"),
    ] = None,
) -> None:
    """destroy the keys of a data subject's notes and reasons (recorded as an event)"""
    with session("erase") as wiring:
        # Imported here, not at the top: for start-up time (see infra.cli.session).
        from pydantic import ValidationError

        from commands.models import ActorIn, EraseDataSubject
        from domain.privacy import ERASED
        from domain.values import Actor
        from domain.values import Role as ActorRole

        try:
            command = EraseDataSubject(
                command_id=command_id or f"erase-{uuid.uuid4()}",
                actor=ActorIn.of(Actor.user(by, ActorRole(role))),
                subject=subject,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise UsageError(problems) from None
        outcome = wiring.ledger().execute(command)
        erased, named = outcome.result["subject"], len(outcome.result["keys"])
        if outcome.replayed:
            print(
                f"erased {erased} (replayed: this command id was handled before; the "
                f"{named} data key(s) it named are destroyed)"
            )
        else:
            print(
                f"erased {erased}: {named} data key(s) destroyed; its notes, reasons and "
                f"contact read as {ERASED} from now on"
            )
        print(
            f"recorded as data_subject {outcome.aggregate_id} (ledger position "
            f"{outcome.position}); every chain, tree and checkpoint still verifies",
            file=sys.stderr,
        )
