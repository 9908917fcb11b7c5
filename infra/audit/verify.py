"""Tamper evidence: recompute the store's chains and tree, and hold them to the signed
checkpoints kept outside the database.

What is checked (docs/auditing.md has the auditor's version):
- every stream's hash chain, from the stored rows (a scheme-2 hash covers the event's
  ledger position; a scheme-1 row, from before positions were covered, only its order);
- the seal: from the position where chaining began, an event without its hash, a hash
  without its event, a gap in versions or in the ledger tree's leaves, or a link that
  does not match is BROKEN; only events before the seal may lack a hash;
- the ledger tree (RFC 6962) recomputed from the events equals the stored one;
- against outside checkpoints (the topic or a file): each one's Ed25519 signature, the
  recomputed root at each checkpoint's size, the stream heads of the newest, and an
  RFC 6962 consistency proof from the newest to the tree as it stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from infra.audit import proofs, signed
from infra.audit.bundle_check import GENESIS, UNSEALED, event_hash
from infra.audit.checkpoints import Outside, StoredTree, TreeAltered, heads_root
from infra.audit.store import LEDGER_PAGE, AuditStore, StoredRow


@dataclass(frozen=True)
class Problem:
    stream: UUID | None
    version: int | None
    position: int | None
    what: str

    def __str__(self) -> str:
        if self.stream is None:
            return self.what
        where = f" (ledger position {self.position})" if self.position else ""
        return f"stream {self.stream} version {self.version}{where}: {self.what}"


@dataclass(frozen=True)
class Anchors:
    """The signed checkpoints `verify` holds the store to: read outside the database,
    each signature checked with the key the auditor trusts."""

    checkpoints: list[dict[str, Any]]  # valid ones, by tree size
    problems: list[str]
    source: str

    @property
    def newest(self) -> dict[str, Any] | None:
        return self.checkpoints[-1] if self.checkpoints else None


def anchors(outside: Outside, public_key: bytes) -> Anchors:
    problems = list(outside.unreadable)
    by_size: dict[int, dict[str, Any]] = {}
    for checkpoint in outside.checkpoints:
        why = signed.signature_problem(checkpoint, public_key)
        if why is not None:
            problems.append(f"{signed.describe(checkpoint)} in {outside.source}: {why}")
            continue
        held = by_size.get(checkpoint["tree_size"])
        if held is not None and (held["root"], held["heads_root"]) != (
            checkpoint["root"],
            checkpoint["heads_root"],
        ):
            problems.append(
                f"two signed checkpoints of {checkpoint['tree_size']} events disagree "
                f"({held['time']} and {checkpoint['time']})"
            )
        by_size.setdefault(checkpoint["tree_size"], checkpoint)
    return Anchors([by_size[size] for size in sorted(by_size)], problems, outside.source)


@dataclass
class VerifyReport:
    streams: int = 0
    events: int = 0
    unsealed: int = 0  # events stored before the seal: not covered
    unpositioned: int = 0  # hashed with scheme 1: their ledger position is not covered
    tree_size: int = 0
    root: str | None = None
    sealed_from: int | None = None
    anchored_to: dict[str, Any] | None = None  # the newest checkpoint held against
    heads: dict[UUID, tuple[int, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def store_problem(self, what: str) -> None:
        self.problems.append(Problem(None, None, None, what))


class _Chains:
    """Each stream's chain state while rows arrive in version order per stream."""

    def __init__(self, report: VerifyReport, sealed_from: int | None) -> None:
        self.report = report
        self.sealed_from = sealed_from
        self.heads: dict[UUID, tuple[int, str | None]] = {}
        self.positions: dict[UUID, int] = {}
        self._texts: dict[UUID, str] = {}

    def text(self, stream: UUID) -> str:
        """A stream id's text, made once per stream (a million rows ask for it twice)."""
        text = self._texts.get(stream)
        if text is None:
            text = self._texts[stream] = str(stream)
        return text

    def sealed(self, row: StoredRow) -> bool:
        return self.sealed_from is not None and row.position >= self.sealed_from

    def check(self, row: StoredRow) -> str | None:
        """Checks one row against its stream's previous one; returns the hash recomputed
        from its content (None when it has no hash)."""
        report, stream = self.report, row.originator_id

        def problem(what: str, version: int | None = None) -> None:
            report.problems.append(
                Problem(stream, version or row.version, row.position if not version else None, what)
            )

        report.events += 1
        last_version, last_hash = self.heads.get(stream, (0, None))
        if row.position <= self.positions.get(stream, 0):
            problem("is out of ledger order")
        self.positions[stream] = row.position
        if row.version <= last_version:
            problem(f"comes after version {last_version} in the ledger")
        elif row.version != last_version + 1:
            problem(f"missing (the next stored is {row.version})", last_version + 1)
        if row.hash is None or row.prev_hash is None:
            if self.sealed(row):
                problem(f"has no hash, yet it is after the seal (position {self.sealed_from})")
            elif last_hash is not None:
                problem("has no hash")
            else:
                report.unsealed += 1  # before the seal: verified from its first hashed event
            self.heads[stream] = (row.version, last_hash)
            return None
        expected_prev = last_hash or (GENESIS if row.version == 1 else UNSEALED)
        if row.prev_hash != expected_prev:
            problem("does not chain to its predecessor")
        self.heads[stream] = (row.version, row.hash)
        if row.scheme not in (1, 2):
            problem(f"unknown hash scheme {row.scheme}")
            return row.hash
        report.unpositioned += row.scheme == 1
        digest = event_hash(
            row.scheme,
            row.prev_hash,
            self.text(stream),
            row.version,
            row.position,
            row.topic,
            row.state,
        )
        if digest != row.hash:
            what = "content or ledger position" if row.scheme >= 2 else "content"
            problem(f"{what} does not match its hash")
        return digest

    def finish(self) -> None:
        self.report.streams = len(self.heads)
        self.report.heads = {s: (v, h) for s, (v, h) in self.heads.items() if h is not None}


def _seal_problems(store: AuditStore, report: VerifyReport) -> int | None:
    sealed_from = store.sealed_from()
    report.sealed_from = sealed_from
    if sealed_from is None:
        report.store_problem("the seal record is gone: the position where chaining began")
    return sealed_from


def _against_checkpoints(
    store: AuditStore, report: VerifyReport, anchored: Anchors | None, current_root: bytes
) -> None:
    """The newest checkpoint against the tree as it stands: sizes, seal and an RFC 6962
    consistency proof from the stored tree, checked against the recomputed root."""
    if anchored is None:
        return
    report.problems.extend(Problem(None, None, None, what) for what in anchored.problems)
    newest = anchored.newest
    if newest is None:
        report.store_problem(
            f"no signed checkpoint could be read from {anchored.source} (none written yet? "
            "`dealledger checkpoint` signs one; the relay signs them as the ledger grows)"
        )
        return
    report.anchored_to = newest
    for checkpoint in anchored.checkpoints:
        if checkpoint["tree_size"] > report.tree_size:
            report.store_problem(
                f"the store holds {report.tree_size} sealed events, but the "
                f"{signed.describe(checkpoint)} covers {checkpoint['tree_size']}: events "
                "were removed or the store was rolled back to an earlier copy"
            )
            return
    if report.sealed_from is not None and newest["sealed_from"] != report.sealed_from:
        report.store_problem(
            f"the store is sealed from position {report.sealed_from}, the "
            f"{signed.describe(newest)} from {newest['sealed_from']}"
        )
    try:
        proof = StoredTree(store).consistency(newest["tree_size"], report.tree_size)
    except TreeAltered as exc:
        report.store_problem(f"no consistency proof from the {signed.describe(newest)}: {exc}")
        return
    if not proofs.verify_consistency(
        newest["tree_size"],
        report.tree_size,
        bytes.fromhex(newest["root"]),
        current_root,
        proof,
    ):
        report.store_problem(
            f"the tree as it stands is not an extension of the {signed.describe(newest)} "
            "(its consistency proof fails)"
        )


def verify_all(store: AuditStore, anchored: Anchors | None = None) -> VerifyReport:
    """Every event, in ledger order: chains, seal, tree, and the checkpoints."""
    report = VerifyReport()
    sealed_from = _seal_problems(store, report)
    chains = _Chains(report, sealed_from)
    frontier = proofs.Frontier()
    sealed_heads: dict[str, tuple[int, str]] = {}
    targets = list(anchored.checkpoints) if anchored else []
    newest = targets[-1] if targets else None
    stored: dict[tuple[int, int], bytes] = {}
    mismatch_named = leaves_differ = False
    for row in store.in_ledger_order():
        digest = chains.check(row)
        if not chains.sealed(row):
            if row.leaf is not None:
                report.problems.append(
                    Problem(
                        row.originator_id,
                        row.version,
                        row.position,
                        f"is in the ledger tree, yet before the seal (position {sealed_from}): "
                        "the seal was moved",
                    )
                )
            continue
        if digest is None:
            continue
        index = frontier.size
        if row.leaf != index:
            report.problems.append(
                Problem(
                    row.originator_id,
                    row.version,
                    row.position,
                    f"is leaf {row.leaf} of the ledger tree where leaf {index} is due: "
                    "events before it are missing, or it was inserted",
                )
            )
        if (0, index) not in stored:
            stored = store.nodes_completed_by(index, index + LEDGER_PAGE)
        leaf = proofs.leaf_hash(bytes.fromhex(digest))
        if stored.get((0, index)) != leaf:
            leaves_differ = True
            report.problems.append(
                Problem(
                    row.originator_id,
                    row.version,
                    row.position,
                    f"differs from leaf {index} of the stored ledger tree",
                )
            )
        for level, node in enumerate(frontier.append(leaf), start=1):
            # Every stored node is held to the one recomputed from the events: a node
            # changed or removed would break the proofs made from it later.
            if not leaves_differ and stored.get((level, index >> level)) != node:
                leaves_differ = True
                report.store_problem(
                    f"node ({level}, {index >> level}) of the stored ledger tree differs "
                    "from the one its events make"
                )
        sealed_heads[chains.text(row.originator_id)] = (row.version, digest)
        while targets and targets[0]["tree_size"] == frontier.size:
            checkpoint = targets.pop(0)
            if not mismatch_named and frontier.root().hex() != checkpoint["root"]:
                mismatch_named = True
                report.store_problem(
                    f"the store no longer matches the {signed.describe(checkpoint)}: its "
                    f"first {checkpoint['tree_size']} events hash to another root"
                )
            if checkpoint is newest:
                root, _ = heads_root((s, v, h) for s, (v, h) in sorted(sealed_heads.items()))
                if root.hex() != newest["heads_root"]:
                    report.store_problem(
                        f"the stream heads differ from those the {signed.describe(newest)} "
                        "commits to"
                    )
    chains.finish()
    for originator_id, version in store.hashed_versions_without_events(None):
        report.problems.append(
            Problem(originator_id, version, None, "was removed (its hash remains)")
        )
    report.tree_size = frontier.size
    current_root = frontier.root()
    report.root = current_root.hex()
    stored_size = store.tree_size()
    if stored_size != frontier.size:
        report.store_problem(
            f"the stored ledger tree has {stored_size} leaves for {frontier.size} sealed "
            "events: hashes without their events, or events without their place"
        )
    elif not leaves_differ:  # a leaf that differs already names where the tree does
        try:
            stored_root = StoredTree(store).root(stored_size)
        except TreeAltered as exc:
            report.store_problem(str(exc))
        else:
            if stored_root != current_root:
                report.store_problem("the stored ledger tree's nodes do not match its leaves")
    _against_checkpoints(store, report, anchored, current_root)
    return report


def verify_streams(
    store: AuditStore, streams: Iterable[UUID], anchored: Anchors | None = None
) -> VerifyReport:
    """The named streams' chains and their events' places in the stored tree, which
    must extend the newest checkpoint; the streams' heads at that checkpoint are
    checked against its commitment."""
    report = VerifyReport()
    sealed_from = _seal_problems(store, report)
    chains = _Chains(report, sealed_from)
    wanted = list(streams)
    leaves: list[tuple[StoredRow, bytes]] = []
    for stream in wanted:
        for row in store.stream(stream):
            digest = chains.check(row)
            if digest is not None and chains.sealed(row):
                if row.leaf is None:
                    report.problems.append(
                        Problem(stream, row.version, row.position, "has no place in the tree")
                    )
                else:
                    leaves.append((row, proofs.leaf_hash(bytes.fromhex(digest))))
        for originator_id, version in store.hashed_versions_without_events(stream):
            report.problems.append(
                Problem(originator_id, version, None, "was removed (its hash remains)")
            )
    chains.finish()
    tree = StoredTree(store)
    report.tree_size = store.tree_size()
    try:
        current_root = tree.root(report.tree_size)
        paths = _inclusion_paths(tree, [row.leaf or 0 for row, _ in leaves], report.tree_size)
    except TreeAltered as exc:
        report.store_problem(str(exc))
        return report
    report.root = current_root.hex()
    for (row, leaf), path in zip(leaves, paths, strict=True):
        if not proofs.verify_inclusion(leaf, row.leaf or 0, report.tree_size, path, current_root):
            report.problems.append(
                Problem(
                    row.originator_id,
                    row.version,
                    row.position,
                    f"is not leaf {row.leaf} of the ledger tree as stored",
                )
            )
    _against_checkpoints(store, report, anchored, current_root)
    newest = report.anchored_to
    if newest is not None and newest["tree_size"] <= report.tree_size:
        _check_heads(store, report, newest, wanted, leaves)
    return report


def _inclusion_paths(tree: StoredTree, indices: list[int], size: int) -> list[list[bytes]]:
    paths: list[list[bytes]] = tree.with_nodes(
        lambda subtree: [proofs.inclusion_proof(i, size, subtree) for i in indices]
    )
    return paths


def _check_heads(
    store: AuditStore,
    report: VerifyReport,
    checkpoint: dict[str, Any],
    streams: list[UUID],
    leaves: list[tuple[StoredRow, bytes]],
) -> None:
    """Each named stream's last event within the checkpoint is the head it commits to:
    so a stream cut short (its newest events deleted, hash rows and all) is noticed."""
    size = checkpoint["tree_size"]
    heads = store.heads_at(size)
    root, _ = heads_root(heads)
    if root.hex() != checkpoint["heads_root"]:
        report.store_problem(
            f"the stream heads differ from those the {signed.describe(checkpoint)} commits to"
        )
        return
    stored = {stream: (version, digest) for stream, version, digest in heads}
    seen: dict[str, tuple[int, str]] = {}
    for row, _ in leaves:
        if row.leaf is not None and row.leaf < size and row.hash is not None:
            seen[str(row.originator_id)] = (row.version, row.hash)
    for stream in map(str, streams):
        if stored.get(stream) != seen.get(stream):
            report.store_problem(
                f"stream {stream} ended at {stored.get(stream)} at the "
                f"{signed.describe(checkpoint)}; the store now shows {seen.get(stream)}"
            )
