"""Invariant I7 (docs/architecture.md): whatever someone who can write the database
changes in a sealed store — events, hash rows, tree nodes or the seal, with every hash
recomputed or not — `verify` reports it against the signed checkpoint kept outside."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.audit import api
from infra.audit.checkpoints import CheckpointWriter, new_key, public_raw, read_file
from infra.audit.store import AuditStore
from infra.audit.verify import anchors
from infra.bootstrap import build_ledger
from infra.settings import Settings
from tests.support.tampering import RawStore, Row
from tests.unit.audit_story import write_story

Tamper = Callable[[RawStore], None]


@dataclass(frozen=True)
class Template:
    store: Path
    checkpoints: Path
    public_key: bytes
    events: int


def _template() -> Template:
    where = Path(tempfile.mkdtemp(prefix="tamper-template-"))
    settings = Settings(sqlite_path=where / "ledger.sqlite", checkpoint_file=where / "cp.jsonl")
    write_story(settings)
    key = new_key()
    ledger = build_ledger(settings)
    try:
        assert CheckpointWriter(AuditStore(ledger), key, settings).write() is not None
        events = AuditStore(ledger).tree_size()
    finally:
        ledger.close()
    return Template(settings.sqlite_path, where / "cp.jsonl", public_raw(key), events)


TEMPLATE = _template()
N = TEMPLATE.events


def _nth(raw: RawStore, i: int) -> Row:
    return raw.rows()[i % len(raw.rows())]


def flip_byte(i: int, offset: int, bit: int) -> Tamper:
    def tamper(raw: RawStore) -> None:
        row = _nth(raw, i)
        state = bytearray(row.state)
        state[offset % len(state)] ^= 1 << bit
        raw.run("UPDATE {events} SET state = %s WHERE {pos} = %s", bytes(state), row.position)

    return tamper


def delete_event(i: int, with_hash: bool) -> Tamper:
    def tamper(raw: RawStore) -> None:
        row = _nth(raw, i)
        raw.run("DELETE FROM {events} WHERE {pos} = %s", row.position)
        if with_hash:
            raw.run(
                "DELETE FROM {hashes} WHERE originator_id = %s AND originator_version = %s",
                raw.sid(row.stream),
                row.version,
            )

    return tamper


def delete_hash_row(i: int) -> Tamper:
    def tamper(raw: RawStore) -> None:
        row = _nth(raw, i)
        raw.run(
            "DELETE FROM {hashes} WHERE originator_id = %s AND originator_version = %s",
            raw.sid(row.stream),
            row.version,
        )

    return tamper


def swap_positions(i: int, j: int) -> Tamper:
    def tamper(raw: RawStore) -> None:
        a, b = _nth(raw, i), _nth(raw, j)
        if a.position == b.position:
            b = _nth(raw, j + 1)
        raw.run("UPDATE {events} SET {pos} = -1 WHERE {pos} = %s", a.position)
        raw.run("UPDATE {events} SET {pos} = %s WHERE {pos} = %s", a.position, b.position)
        raw.run("UPDATE {events} SET {pos} = %s WHERE {pos} = -1", b.position)

    return tamper


def delete_tree_node(pick: int) -> Tamper:
    def tamper(raw: RawStore) -> None:
        nodes = raw.run("SELECT level, idx FROM {tree} ORDER BY level, idx")
        level, idx = nodes[pick % len(nodes)]
        raw.run("DELETE FROM {tree} WHERE level = %s AND idx = %s", level, idx)

    return tamper


def delete_seal() -> Tamper:
    def tamper(raw: RawStore) -> None:
        raw.run("DELETE FROM {seal}")

    return tamper


def rewrite_dropping(i: int) -> Tamper:
    def tamper(raw: RawStore) -> None:
        drop = _nth(raw, i)

        def change(rows: list[Row]) -> list[Row]:
            # Later events of the same stream move down a version: a consistent history.
            kept = []
            for row in rows:
                if row.position == drop.position:
                    continue
                if row.stream == drop.stream and row.version > drop.version:
                    row = Row(row.position, row.stream, row.version - 1, row.topic, row.state)
                kept.append(row)
            return kept

        raw.rewrite(change)

    return tamper


def rewrite_editing(i: int, offset: int) -> Tamper:
    def tamper(raw: RawStore) -> None:
        target = _nth(raw, i)

        def change(rows: list[Row]) -> list[Row]:
            edited = []
            for row in rows:
                if row.position == target.position:
                    state = bytearray(row.state)
                    state[offset % len(state)] ^= 0x20
                    row = Row(row.position, row.stream, row.version, row.topic, bytes(state))
                edited.append(row)
            return edited

        raw.rewrite(change)

    return tamper


index = st.integers(0, N - 1)
tampers = st.one_of(
    st.builds(flip_byte, index, st.integers(0, 10_000), st.integers(0, 7)),
    st.builds(delete_event, index, st.booleans()),
    st.builds(delete_hash_row, index),
    st.builds(swap_positions, index, index),
    st.builds(delete_tree_node, st.integers(0, 4 * N)),
    st.just(delete_seal()),
    st.builds(rewrite_dropping, index),
    st.builds(rewrite_editing, index, st.integers(0, 10_000)),
)


@settings(max_examples=max(10, (settings().max_examples or 100) // 4))
@given(tamper=tampers)
def test_any_tampering_of_a_sealed_store_is_reported_against_its_checkpoint(
    tamper: Tamper,
) -> None:
    where = Path(tempfile.mkdtemp(prefix="tampered-"))
    try:
        store = where / "ledger.sqlite"
        shutil.copy(TEMPLATE.store, store)
        settings_ = Settings(sqlite_path=store)
        tamper(RawStore(settings_))
        ledger = build_ledger(settings_)
        try:
            report = api.verify(
                ledger, anchored=anchors(read_file(TEMPLATE.checkpoints), TEMPLATE.public_key)
            )
        finally:
            ledger.close()
        assert not report.ok
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_the_untouched_template_verifies() -> None:
    """The counterpart: without tampering, the same check passes (so a failure above is
    the tampering's, not the set-up's)."""
    ledger = build_ledger(Settings(sqlite_path=TEMPLATE.store))
    try:
        anchored = anchors(read_file(TEMPLATE.checkpoints), TEMPLATE.public_key)
        assert api.verify(ledger, anchored=anchored).ok
    finally:
        ledger.close()
