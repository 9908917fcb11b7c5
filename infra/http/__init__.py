"""Deal Ledger's HTTP API (FastAPI): `create_app(settings, ledger=None, clock=None)`.

It is one edge of the command gateway (`infra.gateway`): principals, roles, partner
scoping, commands and problems are decided there, without the web framework, for
the Kafka command consumer too; this package maps routes and HTTP onto them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.bootstrap import Wiring

if TYPE_CHECKING:
    from fastapi import FastAPI

    from commands.ledger import DealLedger
    from domain.clock import Clock
    from infra.settings import Settings

__all__ = ["create_app"]


def create_app(
    settings: Settings, ledger: DealLedger | None = None, clock: Clock | None = None
) -> FastAPI:
    """The API for `settings`, wired by the composition root (`infra.bootstrap`); with
    `ledger` given it is used (and not closed)."""
    return Wiring(settings, clock=clock, ledger=ledger).http_app()
