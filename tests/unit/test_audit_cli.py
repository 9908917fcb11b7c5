"""The auditor's commands on the embedded store, through the CLI: history, verify,
export and rebuild, and what they do when the store is missing or altered."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.cli import main
from infra.settings import Settings
from tests.support.env import without_settings
from tests.unit.audit_story import AuditStory, write_story


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    without_settings(monkeypatch)
    path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("DEALLEDGER_SQLITE_PATH", str(path))
    return path


@pytest.fixture
def story(store: Path) -> AuditStory:
    return write_story(Settings(sqlite_path=store))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- history -------------------------------------------------------------------------


def test_history_at_a_version_the_deal_never_had_is_an_error(
    story: AuditStory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert story.deal_versions == 12
    code, out, err = _run(capsys, "history", str(story.deal_id), "--version", "99")
    assert code != 0
    assert out == ""
    assert "no version 99" in err
    assert "latest is 12" in err


def test_history_as_of_honours_the_requested_format(
    story: AuditStory, capsys: pytest.CaptureFixture[str]
) -> None:
    deal = str(story.deal_id)
    code, out, _ = _run(capsys, "history", deal, "--version", "2", "--format", "jsonl")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    state = json.loads(lines[0])
    assert state["deal_version"] == 2
    assert state["deal"]["stage"] == "proposal"
    assert state["registration"]["status"] == "converted"

    code, out, _ = _run(
        capsys, "history", deal, "--as-of", "2026-02-03T12:00:00+00:00", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["object", "version", "field", "value"]
    assert ["deal", "1", "stage", "lead"] in rows

    code, out, _ = _run(capsys, "history", deal, "--version", "2", "--format", "table")
    assert code == 0
    assert out.splitlines()[0].split() == ["object", "version", "field", "value"]


def test_history_table_starts_with_a_header_row(
    story: AuditStory, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "history", str(story.deal_id), "--format", "table")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:2] == ["position", "occurred_at"]
    assert {"stream", "version", "event_type", "actor", "command_id"} <= set(header)


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "{deal}"],
        ["history", "{deal}", "--version", "1"],
        ["verify", "{deal}"],
        ["verify", "--all"],
        ["export", "{deal}", "--out", "{tmp}/bundle.zip"],
        ["rebuild", "--from", "store"],
        ["keys", "list"],
    ],
)
def test_read_only_commands_on_a_missing_store_say_so_and_create_nothing(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_settings(monkeypatch)
    missing = tmp_path / "nowhere" / "ledger.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALLEDGER_")}
    env["DEALLEDGER_SQLITE_PATH"] = str(missing)
    deal = "06dc449a-1aee-51a5-9117-b440d2808d68"
    args = [a.format(deal=deal, tmp=tmp_path) for a in argv]
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert f"no event store at {missing}" in result.stderr
    assert not missing.parent.exists()
    assert not (tmp_path / "bundle.zip").exists()


def test_history_shows_the_same_events_as_the_export_rivals_claims_included(
    story: AuditStory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "history", str(story.deal_id), "--format", "jsonl")
    assert code == 0
    history = [json.loads(line) for line in out.splitlines()]
    bundle = tmp_path / "deal.zip"
    assert _run(capsys, "export", str(story.deal_id), "--out", str(bundle))[0] == 0
    with zipfile.ZipFile(bundle) as z:
        exported = [json.loads(line) for line in z.read("events.jsonl").splitlines()]

    def keyed(rows: list[dict[str, Any]], stream: str, version: str) -> list[tuple[int, str, int]]:
        return sorted((row["position"], row[stream], row[version]) for row in rows)

    assert keyed(history, "aggregate_id", "version") == keyed(
        exported, "originator_id", "originator_version"
    )
    rival = str(story.rival_registration_id)
    claims = [e for e in history if e["changes"].get("registration_id") == rival]
    assert [e["event_type"] for e in claims] == [
        "dealledger.channel_protection.claimed.v1",
        "dealledger.channel_protection.claim_dropped.v1",
    ]


# -- verify ------------------------------------------------------------------------------


def test_verify_notices_an_event_moved_to_another_ledger_position(
    story: AuditStory, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "verify", "--all")[0] == 0
    with sqlite3.connect(store) as conn:
        (last,) = conn.execute("SELECT max(rowid) FROM stored_events").fetchone()
        conn.execute(
            "UPDATE stored_events SET rowid = ? WHERE originator_id = ? AND originator_version = 5",
            (last + 7, story.deal_id.hex),
        )
    code, out, _ = _run(capsys, "verify", str(story.deal_id))
    assert code == 1
    assert f"BROKEN: stream {story.deal_id} version 5 (ledger position {last + 7})" in out
    assert _run(capsys, "verify", "--all")[0] == 1


# -- export ------------------------------------------------------------------------------


def test_export_prints_a_check_command_that_works_where_the_bundle_is(
    story: AuditStory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "out" / "deal 1.zip"
    code, out, _ = _run(capsys, "export", str(story.deal_id), "--out", str(bundle))
    assert code == 0
    command = shlex.split(out.split("(check: ", 1)[1].rsplit(")", 1)[0])
    assert command[0] == "python3"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked = subprocess.run(
        [sys.executable, "-I", *command[1:]],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK")


# -- rebuild -------------------------------------------------------------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """A `dealledger` process with this test's environment (the store it names)."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rebuild_from_store_works_on_the_embedded_store(story: AuditStory, store: Path) -> None:
    from infra.store.databases import read_model_path
    from projections.read_models import dump_tables
    from projections.store import ReadStore

    rebuilt = _cli("rebuild", "--from", "store")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "from the embedded store: 52 events applied" in rebuilt.stdout
    with sqlite3.connect(read_model_path(store)) as conn:
        store_rows = ReadStore(conn, "sqlite")
        won = conn.execute("SELECT status FROM rm_attribution_deal").fetchall()
        first = dump_tables(store_rows)
    assert won == [("won",)]
    # Rebuilt again (the default source): the same rows, nothing applied twice.
    assert _cli("rebuild").returncode == 0
    with sqlite3.connect(read_model_path(store)) as conn:
        assert dump_tables(ReadStore(conn, "sqlite")) == first


def test_http_history_at_a_version_the_deal_never_had_is_a_404_problem(
    story: AuditStory, store: Path
) -> None:
    from fastapi.testclient import TestClient

    from domain.values import Actor, Role
    from infra.http import create_app

    with TestClient(create_app(Settings(sqlite_path=store))) as client:
        key = client.app.state.context.auth.keys.create(Actor.user("aud", Role.AUDITOR))  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {key}"}
        url = f"/v1/deals/{story.deal_id}/history"
        beyond = client.get(url, params={"version": 99}, headers=headers)
        last = client.get(url, params={"version": 12}, headers=headers)

    assert beyond.status_code == 404
    assert beyond.headers["content-type"].startswith("application/problem+json")
    assert beyond.json()["code"] == "not_found"
    assert "no version 99" in beyond.json()["detail"]
    assert last.status_code == 200
    assert last.json()["state"]["deal_version"] == 12
