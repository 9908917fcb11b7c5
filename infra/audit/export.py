"""A self-contained audit bundle: a deal's streams, their hashes, each event's inclusion
proof in the signed ledger tree, each stream's head proof, the signed checkpoint and
its public key, a manifest, and the stdlib-only checker, in one zip an auditor can
verify without the database (and run: `python3 BUNDLE.zip`). What it proves and what
it does not: docs/auditing.md."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any
from uuid import UUID

from infra.audit import bundle_check, proofs, signed
from infra.audit.checkpoints import StoredTree, heads_root
from infra.audit.history import deal_streams
from infra.audit.store import AuditStore, StoredRow


class StaleCheckpoint(RuntimeError):
    """The store no longer matches the checkpoint the bundle would be anchored to."""


def _heads_tree(heads: list[tuple[str, int, str]]) -> proofs.Subtree:
    """Every perfect subtree of the heads tree, in memory: proofs need O(log n) of them."""
    levels = [[signed.head_leaf(*head) for head in heads]]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [proofs.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        )
    return proofs.subtree_from_nodes(lambda level, index: levels[level][index])


def _anchoring(
    store: AuditStore, checkpoint: dict[str, Any], streams: list[UUID]
) -> dict[str, Any]:
    """Each stream's head proof at the checkpoint (None for a stream with no sealed
    event then), after checking the store still matches what the checkpoint commits to."""
    size = checkpoint["tree_size"]
    heads = store.heads_at(size)
    if heads_root(heads)[0].hex() != checkpoint["heads_root"]:
        raise StaleCheckpoint(
            f"the store's stream heads no longer match the {signed.describe(checkpoint)}: "
            "run `dealledger verify --all`"
        )
    if StoredTree(store).root(size).hex() != checkpoint["root"]:
        raise StaleCheckpoint(
            f"the store's tree no longer matches the {signed.describe(checkpoint)}: "
            "run `dealledger verify --all`"
        )
    index = {head[0]: i for i, head in enumerate(heads)}
    subtree = _heads_tree(heads) if heads else None
    found: dict[str, Any] = {}
    for stream in map(str, streams):
        if stream not in index or subtree is None:
            found[stream] = None
            continue
        path = proofs.inclusion_proof(index[stream], len(heads), subtree)
        found[stream] = {"index": index[stream], "proof": [p.hex() for p in path]}
    return found


def export_deal(
    store: AuditStore,
    deal_id: UUID,
    out: Path,
    checkpoint: dict[str, Any] | None = None,
    public_key: bytes | None = None,
) -> dict[str, Any]:
    """Writes the bundle; with a checkpoint, only the events it covers (those stored
    later are the next checkpoint's), each with its inclusion proof."""
    covered = checkpoint["tree_size"] if checkpoint else None
    wanted = deal_streams(store, deal_id)
    rows: list[StoredRow] = [
        row
        for stream in wanted
        for row in store.stream(stream)
        if covered is None or row.leaf is None or row.leaf < covered
    ]
    inclusion: list[list[bytes] | None] = [None] * len(rows)
    if covered is not None:
        sealed = [i for i, row in enumerate(rows) if row.leaf is not None]
        paths = StoredTree(store).with_nodes(
            lambda subtree: [
                proofs.inclusion_proof(rows[i].leaf or 0, covered, subtree) for i in sealed
            ]
        )
        for i, path in zip(sealed, paths, strict=True):
            inclusion[i] = path
    streams: list[UUID] = []  # those with events, in the order they are written
    heads: dict[str, dict[str, Any]] = {}
    count = 0
    first = last = None
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open("events.jsonl", "w") as events:
            for row, path in zip(rows, inclusion, strict=True):
                stream = row.originator_id
                if not streams or streams[-1] != stream:
                    streams.append(stream)
                line = {
                    "position": row.position,
                    "originator_id": str(stream),
                    "originator_version": row.version,
                    "topic": row.topic,
                    "state_b64": base64.b64encode(row.state).decode("ascii"),
                    "prev_hash": row.prev_hash,
                    "hash": row.hash,
                    "hash_scheme": row.scheme if row.hash is not None else None,
                    "leaf": row.leaf,
                    "inclusion": None if path is None else [p.hex() for p in path],
                    # For people; decoded from the stored content exactly as the
                    # checker decodes it, and checked against it there.
                    **bundle_check.shown_fields(row.topic, row.state),
                }
                events.write((json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
                heads[str(stream)] = {"version": row.version, "hash": row.hash}
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
            "checkpoint": checkpoint,
            "public_key": None
            if checkpoint is None or public_key is None
            else base64.b64encode(public_key).decode("ascii"),
            "head_proofs": None if checkpoint is None else _anchoring(store, checkpoint, streams),
        }
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for module in (bundle_check, proofs, signed):
            bundle.writestr(
                Path(module.__file__ or "").name, Path(module.__file__ or "").read_text()
            )
        bundle.writestr("__main__.py", bundle_check.MAIN)
        bundle.writestr("README.txt", bundle_check.README)
    return manifest
