#!/usr/bin/env python3
"""Verify a Deal Ledger audit bundle without the database. Standard library only.

Usage:  python bundle_check.py BUNDLE.zip      (exit 0: intact, 1: broken, 2: unreadable)

The bundle holds `events.jsonl` (one stored event per line, with its chain hashes)
and `manifest.json` (counts, first/last ledger positions, each stream's chain head).
Each event's hash is SHA-256 over its predecessor's hash and its exact stored
content, so any changed, removed or re-ordered event breaks the chain. The ledger
itself computes hashes with `chain_hash` below: this file is the one definition.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from typing import Any

GENESIS = "0" * 64
# A stream whose first events predate hash chaining starts its chain from this.
UNSEALED = "f" * 64


def chain_hash(prev_hash: str, originator_id: str, version: int, topic: str, state: bytes) -> str:
    digest = hashlib.sha256()
    for part in (prev_hash, originator_id, str(version), topic):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    digest.update(state)
    return digest.hexdigest()


def check_bundle(path: str) -> list[str]:
    """Every problem found, first one first; empty when the bundle is intact."""
    with zipfile.ZipFile(path) as bundle:
        manifest: dict[str, Any] = json.loads(bundle.read("manifest.json"))
        lines = bundle.read("events.jsonl").decode("utf-8").splitlines()
    problems: list[str] = []
    heads: dict[str, tuple[int, str]] = {}
    positions: list[int] = []
    for number, line in enumerate(lines, start=1):
        event = json.loads(line)
        stream, version = event["originator_id"], int(event["originator_version"])
        state = base64.b64decode(event["state_b64"])
        last_version, last_hash = heads.get(stream, (0, ""))
        where = f"line {number}: stream {stream} version {version}"
        if event["hash"] is None and not last_hash:
            # Stored before hash chaining: the chain starts at the first hashed event.
            heads[stream] = (version, "")
            positions.append(int(event["position"]))
            continue
        if version != last_version + 1 and not (
            last_version == 0 and event["prev_hash"] == UNSEALED
        ):
            problems.append(f"{where}: expected version {last_version + 1}")
        expected_prev = last_hash or (GENESIS if version == 1 else UNSEALED)
        if event["prev_hash"] != expected_prev:
            problems.append(f"{where}: does not chain to the previous event")
        if chain_hash(event["prev_hash"], stream, version, event["topic"], state) != event["hash"]:
            problems.append(f"{where}: content does not match its hash")
        heads[stream] = (version, event["hash"])
        positions.append(int(event["position"]))
    if len(lines) != manifest["event_count"]:
        problems.append(
            f"manifest counts {manifest['event_count']} events, bundle has {len(lines)}"
        )
    if positions and (min(positions), max(positions)) != (
        manifest["first_position"],
        manifest["last_position"],
    ):
        problems.append("first/last positions differ from the manifest")
    for stream, head in manifest["chain_heads"].items():
        seen = heads.get(stream)
        if seen is None or seen[0] != head["version"] or (seen[1] or None) != head["hash"]:
            problems.append(f"stream {stream}: chain head differs from the manifest")
    if set(heads) != set(manifest["chain_heads"]):
        problems.append("the streams in the bundle differ from the manifest's")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        problems = check_bundle(argv[1])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        print(f"unreadable bundle: {exc!r}", file=sys.stderr)
        return 2
    if problems:
        print(f"BROKEN: {problems[0]}")
        for problem in problems[1:]:
            print(f"        {problem}")
        return 1
    print("OK: every event matches its hash and chains to its predecessor")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
