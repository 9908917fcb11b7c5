"""`dealledger history` output: a deal's events, or its state as of a moment, as JSON
Lines, CSV or a table with a header row."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence

from infra.audit.history import AsOf, HistoryEntry

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
# The table: (heading, width); the last column runs to the end of the line.
_HISTORY_TABLE = (
    ("position", 8),
    ("occurred_at (UTC)", 19),
    ("stream", 27),
    ("version", 7),
    ("event_type", 51),
    ("actor", 28),
    ("command_id", 0),
)


def _table_line(cells: Sequence[str]) -> str:
    parts = [
        cell.rjust(width) if heading == "position" else cell.ljust(width)
        for cell, (heading, width) in zip(cells, _HISTORY_TABLE, strict=True)
    ]
    return "  ".join(parts).rstrip()


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
        print(_table_line([heading for heading, _ in _HISTORY_TABLE]))
        for entry in entries:
            print(
                _table_line(
                    [
                        str(entry.position),
                        f"{entry.occurred_at:%Y-%m-%d %H:%M:%S}",
                        f"{entry.aggregate_type}/{str(entry.aggregate_id)[:8]}",
                        f"v{entry.version}",
                        entry.event_type,
                        entry.actor,
                        entry.command_id,
                    ]
                )
            )
            changes = ", ".join(f"{k}={json.dumps(v)}" for k, v in entry.changes.items())
            if changes:
                print(f"{'':>10}{changes}")


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
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(3)]
    for row in [headings, *rows]:
        print("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[3]]))
