"""`dealledger history` output: a deal's events, or its state as of a moment, as JSON
Lines, CSV or a table with a header row."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable

from infra.audit.history import AsOf, HistoryEntry
from infra.tables import print_table

_HISTORY_COLUMNS = (
    "position",
    "aggregate_type",
    "aggregate_id",
    "version",
    "occurred_at",
    "event_type",
    "actor",
    "command_id",
    "correlation_id",
    "changes",
)
_HISTORY_TABLE = (
    "position",
    "occurred_at (UTC)",
    "stream",
    "version",
    "event_type",
    "actor",
    "command_id",
    "changes",
)


def print_history(entries: Iterable[HistoryEntry], fmt: str) -> None:
    if fmt == "jsonl":
        for entry in entries:
            print(json.dumps(entry.to_json(), sort_keys=True))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(_HISTORY_COLUMNS)
        for entry in entries:
            row = entry.to_json()
            writer.writerow(
                [
                    *(row[k] for k in _HISTORY_COLUMNS[:-1]),
                    json.dumps(row["changes"], sort_keys=True),
                ]
            )
    else:
        rows = [
            [
                str(entry.position),
                f"{entry.occurred_at:%Y-%m-%d %H:%M:%S}",
                f"{entry.aggregate_type}/{str(entry.aggregate_id)[:8]}",
                f"v{entry.version}",
                entry.event_type,
                entry.actor,
                entry.command_id,
                [f"{k}={json.dumps(v)}" for k, v in entry.changes.items()],
            ]
            for entry in entries
        ]
        print_table(
            _HISTORY_TABLE,
            rows,
            right={"position"},
            unbroken={"position", "occurred_at (UTC)", "stream", "version"},
        )


def print_state(state: AsOf, fmt: str) -> None:
    """A deal (and its registration) as of a moment: one JSON object, or one row per
    field (object, version, field, value) as CSV or a table."""
    whole = {
        "deal_version": state.deal_version,
        "deal": state.deal,
        "registration_version": state.registration_version,
        "registration": state.registration,
    }
    if fmt == "jsonl":
        print(json.dumps(whole, sort_keys=True))
        return
    rows = [
        (name, str(version), field, value if isinstance(value, str) else json.dumps(value))
        for name, version, fields in (
            ("deal", state.deal_version, state.deal),
            ("registration", state.registration_version, state.registration or {}),
        )
        for field, value in fields.items()
    ]
    headings = ("object", "version", "field", "value")
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(headings)
        writer.writerows(rows)
        return
    print_table(headings, rows)
