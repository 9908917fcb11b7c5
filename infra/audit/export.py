"""A self-contained audit bundle: a deal's streams, their hashes, a manifest, and the
stdlib-only checker, in one zip an auditor can verify without the database."""

from __future__ import annotations

import base64
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.ids import protection_id
from infra.audit import bundle_check
from infra.audit.history import deal_sources
from infra.audit.store import AuditStore
from infra.event_json import event_type_of, plain

README = """Deal Ledger audit bundle

events.jsonl   every stored event of the streams below, one JSON object a line,
               with its exact stored content (state_b64) and chain hashes
manifest.json  counts, first/last ledger positions, each stream's chain head
bundle_check.py  the verifier (Python 3.11+, standard library only):

    python3 bundle_check.py this-bundle.zip

Compare the manifest's chain heads with those the ledger reports
(`dealledger verify DEAL_ID`) to anchor the bundle to the live store.
"""


def export_deal(store: AuditStore, deal_id: UUID, out: Path) -> dict[str, Any]:
    registrations, key = deal_sources(store, deal_id)
    streams = [deal_id, *registrations, protection_id(key)]
    heads: dict[str, dict[str, Any]] = {}
    count = 0
    first = last = None
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open("events.jsonl", "w") as events:
            for stream in streams:
                for row in store.stream(stream):
                    event = store.decode(row)
                    aggregate_type, event_type = event_type_of(event)
                    line = {
                        "position": row.position,
                        "originator_id": str(row.originator_id),
                        "originator_version": row.version,
                        "topic": row.topic,
                        "state_b64": base64.b64encode(row.state).decode("ascii"),
                        "prev_hash": row.prev_hash,
                        "hash": row.hash,
                        # For people; the check relies on state_b64 only.
                        "aggregate_type": aggregate_type,
                        "event_type": event_type,
                        "occurred_at": plain(event.timestamp),
                        "actor": str(event.cause.actor),
                    }
                    events.write((json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
                    heads[str(row.originator_id)] = {"version": row.version, "hash": row.hash}
                    count += 1
                    first = row.position if first is None else min(first, row.position)
                    last = row.position if last is None else max(last, row.position)
        manifest = {
            "format": "dealledger-audit-bundle/1",
            "deal_id": str(deal_id),
            "exported_at": datetime.now(UTC).isoformat(),
            "streams": [str(s) for s in streams],
            "event_count": count,
            "first_position": first,
            "last_position": last,
            "chain_heads": heads,
        }
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        bundle.writestr("bundle_check.py", Path(bundle_check.__file__).read_text())
        bundle.writestr("README.txt", README)
    return manifest
