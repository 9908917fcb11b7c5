"""Tampering with the store, as someone who can write the database would, is caught by
`verify` against a signed checkpoint kept outside it, and named (docs/auditing.md,
invariant I8 in docs/architecture.md). Each kind runs on PostgreSQL and on SQLite."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.audit import api
from infra.audit.checkpoints import (
    CheckpointWriter,
    append_to_file,
    new_key,
    public_raw,
    read_file,
    sign,
)
from infra.audit.store import AuditStore
from infra.audit.verify import Problem, VerifyReport, anchors
from infra.bootstrap import build_ledger
from infra.cli import main
from infra.settings import Settings
from tests.integration.flow import drop_schema, isolated_settings, settings_env
from tests.support.tampering import RawStore, Row
from tests.unit.audit_story import AuditStory, write_story


@dataclass
class Sealed:
    settings: Settings
    story: AuditStory
    raw: RawStore
    checkpoints: Path
    public_key: bytes

    def checkpoint(self) -> dict[str, Any]:
        ledger = build_ledger(self.settings)
        try:
            writer = CheckpointWriter(AuditStore(ledger), self.key, self.settings)
            written = writer.write()
            assert written is not None
            return written
        finally:
            ledger.close()

    def verify(self, deal: bool = False) -> VerifyReport:
        ledger = build_ledger(self.settings)
        try:
            anchored = anchors(read_file(self.checkpoints), self.public_key)
            return api.verify(ledger, self.story.deal_id if deal else None, anchored)
        finally:
            ledger.close()

    key: Any = None


@pytest.fixture(params=["sqlite", "postgres"])
def sealed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sealed]:
    checkpoints = tmp_path / "checkpoints.jsonl"
    if request.param == "postgres":
        settings = isolated_settings(
            request.getfixturevalue("database_url"),
            request.getfixturevalue("kafka_bootstrap"),
            checkpoint_file=checkpoints,
        )
    else:
        settings = Settings(sqlite_path=tmp_path / "ledger.sqlite", checkpoint_file=checkpoints)
    try:
        story = write_story(settings)
        key = new_key()
        state = Sealed(settings, story, RawStore(settings), checkpoints, public_raw(key), key)
        state.checkpoint()
        yield state
    finally:
        if settings.uses_postgres:
            drop_schema(settings)


def _deal_rows(sealed: Sealed) -> list[Row]:
    return [row for row in sealed.raw.rows() if row.stream == sealed.story.deal_id]


def _named(report: VerifyReport) -> Problem:
    assert not report.ok
    return report.problems[0]


def test_an_untouched_store_verifies_against_its_checkpoint(sealed: Sealed) -> None:
    for deal in (False, True):
        report = sealed.verify(deal)
        assert report.ok, report.problems
        assert report.anchored_to is not None
        # Nothing was written since: the recomputed tree is the one that was signed.
        assert (report.tree_size, report.root) == (
            report.anchored_to["tree_size"],
            report.anchored_to["root"],
        )


def test_an_updated_payload_is_named(sealed: Sealed) -> None:
    target = _deal_rows(sealed)[4]
    sealed.raw.run(
        "UPDATE {events} SET state = %s WHERE {pos} = %s",
        target.state.replace(b"timestamp", b"TIMESTAMP"),
        target.position,
    )
    for deal in (False, True):
        first = _named(sealed.verify(deal))
        assert (first.stream, first.version) == (target.stream, target.version)
        assert "does not match its hash" in first.what


def test_a_deleted_middle_event_is_named(sealed: Sealed) -> None:
    target = _deal_rows(sealed)[5]
    sealed.raw.run("DELETE FROM {events} WHERE {pos} = %s", target.position)
    for deal in (False, True):
        report = sealed.verify(deal)
        assert any(
            (p.stream, p.version) == (target.stream, target.version) for p in report.problems
        ), report.problems


def test_the_newest_event_deleted_with_its_hash_row_is_caught_by_the_checkpoint(
    sealed: Sealed,
) -> None:
    newest = sealed.raw.rows()[-1]
    sealed.raw.run("DELETE FROM {events} WHERE {pos} = %s", newest.position)
    sealed.raw.run(
        "DELETE FROM {hashes} WHERE originator_id = %s AND originator_version = %s",
        sealed.raw.sid(newest.stream),
        newest.version,
    )
    report = sealed.verify()
    assert any(
        "events were removed or the store was rolled back" in str(p) for p in report.problems
    )
    # ... and even its leaf removed too, the checkpoint still covers one event more.
    size = sealed.raw.run("SELECT max(idx) FROM {tree} WHERE level = 0")[0][0]
    sealed.raw.run("DELETE FROM {tree} WHERE level = 0 AND idx = %s", size)
    assert any("rolled back" in str(p) for p in sealed.verify().problems)


def test_a_stream_stripped_of_its_hash_rows_then_edited_is_broken_not_unsealed(
    sealed: Sealed,
) -> None:
    deal = sealed.story.deal_id
    sealed.raw.run("DELETE FROM {hashes} WHERE originator_id = %s", sealed.raw.sid(deal))
    target = _deal_rows(sealed)[3]
    sealed.raw.run(
        "UPDATE {events} SET state = %s WHERE {pos} = %s", target.state + b" ", target.position
    )
    for deal_only in (False, True):
        report = sealed.verify(deal_only)
        first = _named(report)
        assert first.stream == deal
        assert "has no hash, yet it is after the seal" in first.what
        assert report.unsealed == 0


def test_swapped_events_are_named(sealed: Sealed) -> None:
    a, b = _deal_rows(sealed)[2], _deal_rows(sealed)[6]
    sealed.raw.run("UPDATE {events} SET {pos} = -1 WHERE {pos} = %s", a.position)
    sealed.raw.run("UPDATE {events} SET {pos} = %s WHERE {pos} = %s", a.position, b.position)
    sealed.raw.run("UPDATE {events} SET {pos} = %s WHERE {pos} = -1", b.position)
    first = _named(sealed.verify())
    assert first.stream == sealed.story.deal_id


def test_a_forged_event_with_every_hash_recomputed_is_caught_only_by_the_checkpoint(
    sealed: Sealed,
) -> None:
    def forge(rows: list[Row]) -> list[Row]:
        # A note slipped into the deal's history: every later event moves up one place
        # and one version, and the whole store is re-hashed as the recorder would.
        deal = [r for r in rows if r.stream == sealed.story.deal_id]
        at = deal[3]
        forged = Row(at.position, at.stream, at.version, at.topic, at.state.replace(b"note", b"NB"))
        moved = []
        for row in rows:
            if row.position >= at.position:
                bump = 1 if row.stream == at.stream else 0
                row = Row(row.position + 1, row.stream, row.version + bump, row.topic, row.state)
            moved.append(row)
        return [*moved, forged]

    sealed.raw.rewrite(forge)
    plain = build_ledger(sealed.settings)
    try:  # the store alone, with no checkpoint to hold it to, looks whole
        assert api.verify(plain).ok
    finally:
        plain.close()
    problems = [str(p) for p in sealed.verify().problems]
    assert problems
    assert problems[0].startswith("the store no longer matches the checkpoint")
    assert any("consistency proof fails" in p for p in problems)
    assert any("consistency proof fails" in str(p) for p in sealed.verify(True).problems)


def test_a_truncated_hash_table_is_broken(sealed: Sealed) -> None:
    sealed.raw.run("DELETE FROM {hashes}")
    report = sealed.verify()
    assert all(
        "has no hash, yet it is after the seal" in p.what for p in report.problems if p.stream
    )
    assert report.unsealed == 0
    assert len([p for p in report.problems if p.stream]) == report.events


def test_a_removed_seal_record_is_broken(sealed: Sealed) -> None:
    sealed.raw.run("DELETE FROM {seal}")
    assert "the seal record is gone" in str(_named(sealed.verify()))


def test_a_store_rolled_back_to_an_earlier_backup_is_caught(sealed: Sealed) -> None:
    backup = sealed.raw.snapshot()
    from commands.models import SuspendPartner
    from tests.support.actors import MANAGER
    from tests.support.driver import Driver

    ledger = build_ledger(sealed.settings)
    try:
        Driver(ledger, "later").run(SuspendPartner, MANAGER, partner_code="contoso", reason="x")
    finally:
        ledger.close()
    sealed.checkpoint()
    assert sealed.verify().ok
    sealed.raw.restore(backup)
    problems = [str(p) for p in sealed.verify().problems]
    assert any("rolled back to an earlier copy" in p for p in problems), problems


def test_a_checkpoint_signed_by_another_key_is_refused(sealed: Sealed) -> None:
    intruder = new_key()
    ledger = build_ledger(sealed.settings)
    try:
        store = AuditStore(ledger)
        forged = sign(
            intruder,
            tree_size=store.tree_size(),
            root=bytes(32),
            sealed_from=1,
            heads=(bytes(32), 0),
            now=datetime.now(UTC),
        )
    finally:
        ledger.close()
    append_to_file(sealed.checkpoints, forged)
    problems = [str(p) for p in sealed.verify().problems]
    assert any("it names key" in p for p in problems), problems


def test_verify_on_the_command_line_names_the_checkpoint_the_store_no_longer_matches(
    sealed: Sealed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in settings_env(sealed.settings).items():
        if name.startswith("DEALLEDGER_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("DEALLEDGER_KAFKA_BOOTSTRAP", raising=False)
    public = base64.b64encode(sealed.public_key).decode()
    args = ["verify", "--all", "--checkpoint", str(sealed.checkpoints), "--public-key", public]
    assert main(args) == 0
    assert "consistent with the checkpoint of" in capsys.readouterr().out
    copy = sealed.checkpoints.with_suffix(".copy")
    shutil.copy(sealed.checkpoints, copy)
    sealed.raw.rewrite(lambda rows: [r for r in rows if r.position != rows[7].position])
    assert main([*args[:3], str(copy), *args[4:]]) == 1
    out = capsys.readouterr().out
    assert out.startswith("BROKEN: ")
    assert "checkpoint of" in out
