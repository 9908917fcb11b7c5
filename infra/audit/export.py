"""A self-contained audit bundle: a deal's streams, their hashes, a manifest, and the
stdlib-only checker, in one zip an auditor can verify without the database (and run:
`python3 BUNDLE.zip`). What it proves and what it does not: docs/auditing.md."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any
from uuid import UUID

from infra.audit import bundle_check
from infra.audit.history import deal_streams
from infra.audit.store import AuditStore


def export_deal(store: AuditStore, deal_id: UUID, out: Path) -> dict[str, Any]:
    streams: list[UUID] = []  # those with events, in the order they are written
    heads: dict[str, dict[str, Any]] = {}
    count = 0
    first = last = None
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open("events.jsonl", "w") as events:
            for stream in deal_streams(store, deal_id):
                for row in store.stream(stream):
                    if not streams or streams[-1] != stream:
                        streams.append(stream)
                    line = {
                        "position": row.position,
                        "originator_id": str(row.originator_id),
                        "originator_version": row.version,
                        "topic": row.topic,
                        "state_b64": base64.b64encode(row.state).decode("ascii"),
                        "prev_hash": row.prev_hash,
                        "hash": row.hash,
                        "hash_scheme": row.scheme if row.hash is not None else None,
                        # For people; decoded from the stored content exactly as the
                        # checker decodes it, and checked against it there.
                        **bundle_check.shown_fields(row.topic, row.state),
                    }
                    events.write((json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
                    heads[str(row.originator_id)] = {"version": row.version, "hash": row.hash}
                    count += 1
                    first = row.position if first is None else min(first, row.position)
                    last = row.position if last is None else max(last, row.position)
        manifest = {
            "format": bundle_check.FORMAT,
            "deal_id": str(deal_id),
            "streams": [str(s) for s in streams],
            "event_count": count,
            "first_position": first,
            "last_position": last,
            "chain_heads": heads,
        }
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        bundle.writestr("bundle_check.py", Path(bundle_check.__file__).read_text())
        bundle.writestr("__main__.py", bundle_check.MAIN)
        bundle.writestr("README.txt", bundle_check.README)
    return manifest
