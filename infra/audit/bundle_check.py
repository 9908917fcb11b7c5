#!/usr/bin/env python3
"""Verify a Deal Ledger audit bundle without the database. Standard library only.

Usage:  python3 BUNDLE.zip [--public-key BASE64]
            (the bundle runs this checker itself)
        python3 bundle_check.py BUNDLE.zip [--public-key BASE64]
            (a copy you trust, e.g. from the repository, beside proofs.py and signed.py)
Exit 0: intact, 1: broken, 2: unreadable or not a bundle this checker knows.

The bundle holds `events.jsonl` (one stored event per line, with its chain hashes and
its inclusion proof in the ledger tree) and `manifest.json` (counts, first/last ledger
positions, each stream's chain head, the signed checkpoint, its public key and each
stream's head proof). Each event's hash is SHA-256 over its predecessor's hash, its
stream, version, ledger position (hash scheme 2) and its exact stored content, so any
changed, removed or re-ordered event breaks the chain; each sealed event's leaf must
be in the tree whose root the checkpoint signs (RFC 6962), and each stream's last
event must be the head the checkpoint commits to, so a stream cut short is noticed
too. Every other field a line shows (type, time, actor) is decoded here from the
hashed stored content and must equal it; both files must be byte for byte as the
exporter writes them. The ledger itself computes hashes with `event_hash` below: this
file is the one definition. Pass --public-key (the operator publishes it) to pin the
key; otherwise the checker reports the key id the bundle was signed with. What a
bundle proves, and what it cannot: docs/auditing.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
import uuid
import zipfile
from typing import Any

try:  # inside the project
    from infra.audit import proofs, signed
except ImportError:  # inside a bundle, or run as a script beside proofs.py and signed.py
    import proofs  # type: ignore[import-not-found, no-redef]
    import signed  # type: ignore[import-not-found, no-redef]

FORMAT = "dealledger-audit-bundle/3"
GENESIS = "0" * 64
# A stream whose first events predate hash chaining starts its chain from this.
UNSEALED = "f" * 64
# 1: (prev, stream, version, topic, state); 2 adds the ledger position. New rows use 2.
SCHEME = 2
SCHEME_2_TAG = "dealledger-chain/2"

README = """Deal Ledger audit bundle

events.jsonl     every stored event of the streams in the manifest up to the signed
                 checkpoint, one JSON object a line, with its exact stored content
                 (state_b64), chain hashes and inclusion proof in the ledger tree
manifest.json    counts, first/last ledger positions, each stream's chain head, the
                 signed checkpoint, its public key and each stream's head proof
bundle_check.py  the verifier (Python 3.11+, standard library only, with proofs.py
proofs.py        and signed.py); __main__.py runs it when the bundle itself is run:
signed.py
    python3 this-bundle.zip --public-key THE-OPERATORS-PUBLIC-KEY
    python3 /a/copy/you/trust/bundle_check.py this-bundle.zip --public-key ...

Without --public-key the checker reports the key id the checkpoint was signed with:
compare it with the one the ledger's operator publishes.
"""

MAIN = """import sys

import bundle_check

# `python3 BUNDLE.zip [--public-key KEY]` checks the bundle it is run from (or the one
# named after it).
args = sys.argv[1:]
if not args or args[0].startswith("--"):
    args = [sys.argv[0], *args]
sys.exit(bundle_check.main([sys.argv[0], *args]))
"""

FILES = (
    "README.txt",
    "__main__.py",
    "bundle_check.py",
    "events.jsonl",
    "manifest.json",
    "proofs.py",
    "signed.py",
)
LINE_FIELDS = {
    "position",
    "originator_id",
    "originator_version",
    "topic",
    "state_b64",
    "prev_hash",
    "hash",
    "hash_scheme",
    "leaf",
    "inclusion",
    "aggregate_type",
    "event_type",
    "occurred_at",
    "actor",
}
MANIFEST_FIELDS = {
    "format",
    "deal_id",
    "streams",
    "event_count",
    "first_position",
    "last_position",
    "chain_heads",
    "checkpoint",
    "public_key",
    "head_proofs",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Unreadable(ValueError):
    """Not a bundle this checker can judge (exit 2)."""


def chain_hash(prev_hash: str, originator_id: str, version: int, topic: str, state: bytes) -> str:
    """Scheme 1: rows hashed before the ledger position was covered."""
    digest = hashlib.sha256()
    for part in (prev_hash, originator_id, str(version), topic):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    digest.update(state)
    return digest.hexdigest()


def event_hash(
    scheme: int,
    prev_hash: str,
    originator_id: str,
    version: int,
    position: int,
    topic: str,
    state: bytes,
) -> str:
    if scheme == 1:
        return chain_hash(prev_hash, originator_id, version, topic, state)
    if scheme != 2:
        raise ValueError(f"unknown hash scheme {scheme!r}")
    digest = hashlib.sha256()
    # The tag keeps a scheme-2 preimage from ever reading as a scheme-1 one.
    for part in (SCHEME_2_TAG, prev_hash, originator_id, str(version), str(position), topic):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    digest.update(state)
    return digest.hexdigest()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _wrapped(value: Any, type_name: str, what: str) -> Any:
    """The payload of a value the event store's JSON transcoder tagged with its type."""
    if not isinstance(value, dict) or set(value) != {"_type_", "_data_"}:
        raise ValueError(f"{what} is not a stored {type_name}")
    if value["_type_"] != type_name:
        raise ValueError(f"{what} is a {value['_type_']!r}, not a {type_name}")
    return value["_data_"]


def _actor_text(actor: Any) -> str:
    if not isinstance(actor, dict) or not all(
        isinstance(actor.get(k), str) for k in ("kind", "id", "role")
    ):
        raise ValueError("the stored cause names no actor")
    if actor["kind"] == "user":
        return f"user:{actor['id']}({actor['role']})"
    return f"{actor['kind']}:{actor['id']}"


def shown_fields(topic: str, state: bytes) -> dict[str, str]:
    """What a bundle line shows about an event, derived from its topic and stored state
    (as the event store wrote them, before any upcasting: the type's version is the
    one the event was written with)."""
    module, colon, qualname = topic.partition(":")
    aggregate, dot, event_name = qualname.rpartition(".")
    if not (module and colon and aggregate and dot and event_name):
        raise ValueError(f"topic {topic!r} names no event class")
    data = json.loads(state.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the stored state is not a JSON object")
    occurred_at = _wrapped(data.get("timestamp"), "datetime_iso", "the stored timestamp")
    cause = _wrapped(data.get("cause"), "cause", "the stored cause")
    version = data.get("class_version", 1)
    if not isinstance(occurred_at, str) or not isinstance(cause, dict):
        raise ValueError("the stored timestamp or cause is malformed")
    if type(version) is not int or version < 1:
        raise ValueError("the stored class_version is malformed")
    aggregate_type = _snake(aggregate.rsplit(".", 1)[-1])
    return {
        "aggregate_type": aggregate_type,
        "event_type": f"dealledger.{aggregate_type}.{_snake(event_name)}.v{version}",
        "occurred_at": occurred_at,
        "actor": _actor_text(cause.get("actor")),
    }


def _canonical_line(event: Any) -> str:
    return json.dumps(event, sort_keys=True)


def _canonical_manifest(manifest: Any) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True)


def _is_int(value: Any) -> bool:
    return type(value) is int


def _same(given: Any, expected: Any) -> bool:
    """Equal as JSON text: 3.0 is not 3, and true is not 1."""
    return json.dumps(given, sort_keys=True) == json.dumps(expected, sort_keys=True)


def _line_problems(event: Any) -> list[str]:
    """Shape problems of one parsed line; an empty list means the fields can be used."""
    if not isinstance(event, dict):
        return ["is not a JSON object"]
    if set(event) != LINE_FIELDS:
        return [f"has fields {sorted(event)}, expected {sorted(LINE_FIELDS)}"]
    problems = []
    if not (_is_int(event["position"]) and event["position"] > 0):
        problems.append("position is not a positive integer")
    if not (_is_int(event["originator_version"]) and event["originator_version"] > 0):
        problems.append("originator_version is not a positive integer")
    try:
        canonical_id = str(uuid.UUID(str(event["originator_id"])))
    except ValueError:
        canonical_id = ""
    if event["originator_id"] != canonical_id:
        problems.append("originator_id is not a canonical UUID")
    for name in ("topic", "state_b64"):
        if not isinstance(event[name], str):
            problems.append(f"{name} is not a string")
    sealed = event["hash"] is not None
    for name in ("hash", "prev_hash"):
        value = event[name]
        if sealed and not (isinstance(value, str) and _HEX64.fullmatch(value)):
            problems.append(f"{name} is not a SHA-256 hex digest")
        if not sealed and value is not None:
            problems.append(f"{name} is set on an event without a hash")
    if sealed and not (_is_int(event["hash_scheme"]) and event["hash_scheme"] in (1, 2)):
        problems.append(f"hash_scheme {event['hash_scheme']!r} is unknown")
    if not sealed and event["hash_scheme"] is not None:
        problems.append("hash_scheme is set on an event without a hash")
    leaf, inclusion = event["leaf"], event["inclusion"]
    if leaf is not None and not (_is_int(leaf) and leaf >= 0 and sealed):
        problems.append("leaf is not the index of a hashed event")
    if inclusion is not None and not (
        leaf is not None
        and isinstance(inclusion, list)
        and all(isinstance(h, str) and _HEX64.fullmatch(h) for h in inclusion)
    ):
        problems.append("inclusion is not a list of SHA-256 hex digests of a leaf")
    return problems


def _state(event: dict[str, Any]) -> bytes:
    """The stored bytes; the base64 text must be the one canonical encoding of them."""
    try:
        state = base64.b64decode(event["state_b64"], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"state_b64 is not base64: {exc}") from None
    if base64.b64encode(state).decode("ascii") != event["state_b64"]:
        raise ValueError("state_b64 is not the canonical base64 of its bytes")
    return state


class _Streams:
    """Per-stream chain state while the lines are read in order."""

    def __init__(self) -> None:
        self.heads: dict[str, tuple[int, str | None]] = {}  # stream -> (version, last hash)
        self.last_position: dict[str, int] = {}
        self.order: list[str] = []

    def check(self, event: dict[str, Any], state: bytes) -> list[str]:
        stream, version, position = (
            event["originator_id"],
            event["originator_version"],
            event["position"],
        )
        if stream not in self.heads:
            self.order.append(stream)
        last_version, last_hash = self.heads.get(stream, (0, None))
        problems = []
        if version != last_version + 1:
            problems.append(f"expected version {last_version + 1}")
        if position <= self.last_position.get(stream, 0):
            problems.append("its ledger position is not after its predecessor's")
        self.last_position[stream] = position
        if event["hash"] is None:
            # Stored before hash chaining: allowed only before a stream's first hash.
            if last_hash is not None:
                problems.append("has no hash, but an earlier event of its stream has")
            self.heads[stream] = (version, None)
            return problems
        expected_prev = last_hash or (GENESIS if version == 1 else UNSEALED)
        if event["prev_hash"] != expected_prev:
            problems.append("does not chain to the previous event")
        digest = event_hash(
            event["hash_scheme"],
            event["prev_hash"],
            stream,
            version,
            position,
            event["topic"],
            state,
        )
        if digest != event["hash"]:
            what = "content or position" if event["hash_scheme"] >= 2 else "content"
            problems.append(f"{what} does not match its hash")
        self.heads[stream] = (version, event["hash"])
        return problems


def _read(path: str) -> tuple[Any, str, list[str]]:
    problems = []
    with zipfile.ZipFile(path) as bundle:
        names = sorted(bundle.namelist())
        manifest_text = bundle.read("manifest.json").decode("utf-8")
        events_text = bundle.read("events.jsonl").decode("utf-8")
        readme = bundle.read("README.txt").decode("utf-8") if "README.txt" in names else None
    if names != sorted(FILES):
        problems.append(f"the bundle holds {names}, expected {sorted(FILES)}")
    if readme is not None and readme != README:
        problems.append("README.txt differs from the exporter's")
    manifest = json.loads(manifest_text)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise Unreadable(f"bundle format {found!r} is not {FORMAT!r}")
    if manifest_text != _canonical_manifest(manifest):
        problems.append("manifest.json is not as the exporter writes it")
    return manifest, events_text, problems


def _manifest_problems(
    manifest: dict[str, Any], streams: _Streams, positions: set[int], count: int
) -> list[str]:
    if set(manifest) != MANIFEST_FIELDS:
        return [f"the manifest has fields {sorted(manifest)}, expected {sorted(MANIFEST_FIELDS)}"]
    problems = []
    if not _same(manifest["event_count"], count):
        problems.append(f"manifest counts {manifest['event_count']!r} events, bundle has {count}")
    span = [min(positions), max(positions)] if positions else [None, None]
    if not _same([manifest["first_position"], manifest["last_position"]], span):
        problems.append("first/last positions differ from the manifest")
    if not _same(manifest["streams"], streams.order):
        problems.append("the streams in the bundle differ from the manifest's")
    if not streams.order or not _same(manifest["deal_id"], streams.order[0]):
        problems.append("the manifest's deal is not the bundle's first stream")
    heads = manifest["chain_heads"]
    if not isinstance(heads, dict) or set(heads) != set(streams.heads):
        problems.append("the chain heads in the manifest name other streams than the bundle's")
        return problems
    for stream, (version, digest) in streams.heads.items():
        if not _same(heads[stream], {"version": version, "hash": digest}):
            problems.append(f"stream {stream}: chain head differs from the manifest")
    return problems


def check_bundle(path: str, public_key: bytes | None = None) -> list[str]:
    """Every problem found, first one first; empty when the bundle is intact. With
    `public_key`, the checkpoint must be signed with exactly that key."""
    manifest, events_text, problems = _read(path)
    if events_text and not events_text.endswith("\n"):
        problems.append("events.jsonl does not end with a newline")
    lines = events_text.splitlines()
    streams = _Streams()
    positions: set[int] = set()
    deal_opened = False
    for number, line in enumerate(lines, start=1):
        event = json.loads(line)
        shape = _line_problems(event)
        if shape:
            problems.extend(f"line {number}: {problem}" for problem in shape)
            continue
        where = f"line {number}: stream {event['originator_id']} version "
        where += str(event["originator_version"])
        if line != _canonical_line(event):
            problems.append(f"{where}: the line is not as the exporter writes it")
        try:
            state = _state(event)
            shown = shown_fields(event["topic"], state)
        except ValueError as exc:
            problems.append(f"{where}: stored content does not decode: {exc}")
            continue
        for name, value in shown.items():
            if not _same(event[name], value):
                problems.append(
                    f"{where}: {name} {event[name]!r} differs from the stored event's {value!r}"
                )
        if event["position"] in positions:
            problems.append(f"{where}: position {event['position']} appears twice")
        positions.add(event["position"])
        problems.extend(f"{where}: {problem}" for problem in streams.check(event, state))
        if event["originator_id"] == manifest.get("deal_id") and event["originator_version"] == 1:
            deal_opened = shown["event_type"].startswith("dealledger.deal.opened.")
    if not deal_opened:
        problems.append("the manifest's deal has no deal.opened event in the bundle")
    problems.extend(_manifest_problems(manifest, streams, positions, len(lines)))
    if not problems:
        parsed = [json.loads(line) for line in lines]
        problems.extend(_anchor_problems(manifest, parsed, streams, public_key))
    return problems


def _anchor_problems(
    manifest: dict[str, Any],
    lines: list[dict[str, Any]],
    streams: _Streams,
    pinned: bytes | None,
) -> list[str]:
    """The signed checkpoint, each sealed event's place in its tree, each stream's head."""
    checkpoint = manifest["checkpoint"]
    if checkpoint is None:
        if manifest["public_key"] is not None or manifest["head_proofs"] is not None:
            return ["the manifest has a key or head proofs but no checkpoint"]
        if any(line["inclusion"] is not None for line in lines):
            return ["events carry inclusion proofs but there is no checkpoint"]
        return []
    try:
        checkpoint = signed.parse(json.dumps(checkpoint))
        key = base64.b64decode(str(manifest["public_key"]), validate=True)
    except (ValueError, binascii.Error) as exc:
        return [f"the manifest's checkpoint or key is malformed: {exc}"]
    if pinned is not None and key != pinned:
        return [
            f"signed with key {signed.key_id(key)}, not the one given ({signed.key_id(pinned)})"
        ]
    why = signed.signature_problem(checkpoint, key)
    if why is not None:
        return [f"the checkpoint is not genuine: {why}"]
    size, root = checkpoint["tree_size"], bytes.fromhex(checkpoint["root"])
    problems = []
    for number, line in enumerate(lines, start=1):
        where = (
            f"line {number}: stream {line['originator_id']} version {line['originator_version']}"
        )
        if line["position"] < checkpoint["sealed_from"]:
            if line["leaf"] is not None:
                problems.append(f"{where}: has a leaf, yet it is before the seal")
            continue
        if line["leaf"] is None or line["inclusion"] is None:
            problems.append(f"{where}: is after the seal but has no place in the ledger tree")
            continue
        if line["leaf"] >= size:
            problems.append(f"{where}: leaf {line['leaf']} is beyond the checkpoint's tree")
            continue
        leaf = proofs.leaf_hash(bytes.fromhex(line["hash"]))
        path = [bytes.fromhex(h) for h in line["inclusion"]]
        if not proofs.verify_inclusion(leaf, line["leaf"], size, path, root):
            problems.append(f"{where}: is not leaf {line['leaf']} of the signed ledger tree")
    proofs_given = manifest["head_proofs"]
    if not isinstance(proofs_given, dict) or set(proofs_given) != set(streams.heads):
        return [*problems, "the head proofs name other streams than the bundle's"]
    heads_root = bytes.fromhex(checkpoint["heads_root"])
    for stream, (version, digest) in streams.heads.items():
        given = proofs_given[stream]
        last = [line for line in lines if line["originator_id"] == stream][-1]
        if last["leaf"] is None:
            if given is not None:
                problems.append(f"stream {stream}: a head proof for a stream never sealed")
            continue
        if not (
            isinstance(given, dict)
            and set(given) == {"index", "proof"}
            and _is_int(given["index"])
            and isinstance(given["proof"], list)
            and all(isinstance(h, str) and _HEX64.fullmatch(h) for h in given["proof"])
        ):
            problems.append(f"stream {stream}: its head proof is malformed")
            continue
        head = signed.head_leaf(stream, version, str(digest))
        path = [bytes.fromhex(h) for h in given["proof"]]
        if not proofs.verify_inclusion(
            head, given["index"], checkpoint["streams"], path, heads_root
        ):
            problems.append(
                f"stream {stream}: version {version} is not its head at the checkpoint "
                "(events are missing from the bundle)"
            )
    return problems


def anchor_note(path: str) -> str:
    """What the checkpoint of an intact bundle says, for the OK line."""
    with zipfile.ZipFile(path) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
    checkpoint = manifest["checkpoint"]
    if checkpoint is None:
        return (
            "UNSIGNED: the bundle has no signed checkpoint, so nothing shows it came from "
            "the ledger or that it is complete (set up a signing key; docs/auditing.md)"
        )
    return (
        f"anchored to the ledger's {signed.describe(checkpoint)} by key {checkpoint['key_id']}"
        ": every sealed event is in its tree, and every stream ends at its head then"
    )


def main(argv: list[str]) -> int:
    args = argv[1:]
    pinned = None
    if len(args) == 3 and args[1] == "--public-key":
        try:
            pinned = base64.b64decode(args[2], validate=True)
        except binascii.Error:
            pinned = b""
        if len(pinned) != 32:
            print("--public-key takes the 32-byte key in base64", file=sys.stderr)
            return 2
        args = args[:1]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        problems = check_bundle(args[0], pinned)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RecursionError) as exc:
        # json and base64 errors are ValueErrors; Unreadable is one too.
        print(f"unreadable bundle: {exc!r}", file=sys.stderr)
        return 2
    if problems:
        print(f"BROKEN: {problems[0]}")
        for problem in problems[1:]:
            print(f"        {problem}")
        return 1
    print(
        "OK: every event matches its hash and chains to its predecessor, and every field "
        "shown matches the hashed content"
    )
    print(anchor_note(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
