"""How the demo looks: its story as timestamped lines, its report as rich tables."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from infra.demo.formats import when
from infra.demo.report import Listing, ReadModelReport, StoreReport
from infra.demo.scenario import Step
from infra.tables import print_table

_WIDTH = 118  # step lines wrap here, continuing under the text
_INDENT = len("[2026-01-05 09:00] ")


def postgres_ignored() -> None:
    print("The demo always runs on an embedded SQLite store; DATABASE_URL is ignored.")


def opening(path: Path, *, fresh: bool, run: int, start: datetime) -> None:
    if fresh:
        print(f"Deal Ledger demo on a fresh embedded store: {path}")
    else:
        print(f"Deal Ledger demo, appending to the embedded store: {path}")
    if run > 1:
        print(f"Run {run}: codes and product lines end in r{run}; the clock starts {when(start)}")
    print("Actors: carol (channel manager), sam (sales), and the partners themselves.")


def step(told: Step) -> None:
    """One line per step (wrapped under its text), then its breakdown, aligned."""
    print(
        textwrap.fill(
            f"[{when(told.at)}] {told.text}",
            width=_WIDTH,
            subsequent_indent=" " * _INDENT,
            break_on_hyphens=False,
        )
    )
    if not told.breakdown:
        return
    width = max(len(label) for label, *_ in told.breakdown)
    for label, share, amount, currency in told.breakdown:
        print(f"{'':{_INDENT}}{label:<{width}}  {share:>4}  {amount:>12,.2f} {currency}")


def _listings(listings: Sequence[Listing]) -> None:
    for listing in listings:
        print()
        print_table(listing.headers, listing.rows, title=listing.title)


def store_report(report: StoreReport, path: Path) -> None:
    _listings(report.listings)
    print()
    print(f"{report.events} events stored in {path} (counted by reading the store back)")


def read_models(report: ReadModelReport) -> None:
    print()
    print(
        f"READ MODELS, fed in-process from the notification log ({report.fed} events) "
        f"into {report.path}"
    )
    _listings(report.listings)
    print()
    print(f"Review queue: {report.awaiting_review} registration(s) awaiting review")


def api_example(path: Path, manager_key: str, partner_key: str) -> None:
    """Curl lines, with keys for carol and for partner northwind, for `dealledger serve`."""
    base = "http://127.0.0.1:8000"
    print()
    print(
        f"HTTP API on this store: DEALLEDGER_SQLITE_PATH={path} .venv/bin/dealledger serve"
        f"   (OpenAPI: {base}/docs)"
    )
    print("then, as carol (channel manager) and as partner northwind (sees only its own):")
    print(
        f"  curl -s -H 'Authorization: Bearer {manager_key}' '{base}/v1/pipeline?group_by=partner'"
    )
    print(f"  curl -s -H 'Authorization: Bearer {manager_key}' '{base}/v1/review-queue'")
    print(f"  curl -s -H 'X-API-Key: {partner_key}' '{base}/v1/registrations'")
