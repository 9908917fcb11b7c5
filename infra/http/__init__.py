"""Deal Ledger's HTTP API (FastAPI): `create_app(settings, ledger=None, clock=None)`.

`infra.gateway.principals` (API keys -> principals) is importable on its own, without the web
framework, by other edges such as the Kafka command consumer."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from infra.bootstrap import Wiring

    return Wiring(settings, clock=clock, ledger=ledger).http_app()
