"""`dealledger keys`: API keys, created (shown once), listed and revoked."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from domain.errors import DomainError
from infra.cli.session import UsageError, require_store, session

if TYPE_CHECKING:
    from domain.values import Actor
    from infra.bootstrap import Wiring

app = typer.Typer(help="create, list or revoke API keys", no_args_is_help=True)

# The roles an internal user's key may act in (partners have keys of their own).
UserRole = Literal["channel_manager", "sales", "auditor", "admin"]


@app.command()
def create(
    partner: Annotated[
        str | None, typer.Option(metavar="CODE", help="a key acting as this partner")
    ] = None,
    user: Annotated[
        str | None, typer.Option(metavar="NAME", help="a key acting as this internal user")
    ] = None,
    role: Annotated[UserRole | None, typer.Option(help="with --user", show_default=False)] = None,
    label: Annotated[str, typer.Option(help="a note kept with the key")] = "",
) -> None:
    """create a key; printed once, stored hashed"""
    with session("keys") as wiring:
        actor = _key_actor(partner, user, role)
        if actor.kind.value == "partner":
            _warn_unknown_partner(wiring, actor.id)
        key = wiring.key_store().create(actor, label)
        print(key)
        print(
            f"API key for {actor} (id {key.split('_')[1]}). It is shown this once; "
            "only its hash is stored.",
            file=sys.stderr,
        )


@app.command("list")
def list_keys() -> None:
    """every key: id, principal, state (never secrets)"""
    with session("keys") as wiring:
        require_store(wiring, events=False)
        for stored in wiring.key_store().list():
            state = (
                "revoked " + f"{stored.revoked_at:%Y-%m-%d %H:%M}"
                if stored.revoked_at
                else "active"
            )
            print(
                f"{stored.key_id}  {stored.actor!s:<36} {state:<24} "
                f"{stored.created_at:%Y-%m-%d %H:%M}  {stored.label}"
            )


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(metavar="KEY_ID")]) -> None:
    """revoke a key by its id"""
    with session("keys") as wiring:
        require_store(wiring, events=False)
        if not wiring.key_store().revoke(key_id):
            print(f"dealledger keys revoke: no active key {key_id}", file=sys.stderr)
            raise typer.Exit(1)
        print(f"revoked {key_id}")


def _key_actor(partner: str | None, user: str | None, role: str | None) -> Actor:
    # Imported here, not at the top: for start-up time (`domain.values` loads the
    # domain's normalisation rules).
    from domain.values import Actor, Role

    if partner and user:
        raise UsageError("give --partner CODE or --user NAME, not both")
    if partner:
        return Actor.partner(partner)
    if not user or not role:
        raise UsageError("give --partner CODE, or --user NAME with --role ROLE")
    return Actor.user(user, Role(role))


def _warn_unknown_partner(wiring: Wiring, partner_code: str) -> None:
    try:
        wiring.ledger().get_partner(partner_code)
    except DomainError:
        print(f"note: partner {partner_code} is not onboarded (yet)", file=sys.stderr)
