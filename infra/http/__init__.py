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
    """The API for `settings` (see `infra.http.app.create_app`)."""
    from infra.http.app import create_app as build

    return build(settings, ledger, clock)
