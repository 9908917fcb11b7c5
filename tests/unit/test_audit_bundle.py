"""Audit bundles through their real edges: written by `dealledger export`, altered the
way a forger would, and judged by the bundle's own checker under `python3 -I`."""

from __future__ import annotations

import base64
import json
import os
import random
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.audit.bundle_check import chain_hash, shown_fields
from infra.cli import main
from infra.settings import Settings
from tests.support.actors import MANAGER, SALES, SYSTEM, partner
from tests.support.driver import Driver
from tests.support.env import without_settings
from tests.unit.audit_story import AuditStory, write_story

Line = dict[str, Any]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    without_settings(monkeypatch)
    path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("DEALLEDGER_SQLITE_PATH", str(path))
    # Exports are anchored to a checkpoint signed with this key (written at export).
    assert main(["signing-key", "create", "--out", str(tmp_path / "signing.pem")]) == 0
    monkeypatch.setenv("DEALLEDGER_SIGNING_KEY_FILE", str(tmp_path / "signing.pem"))
    return path


@pytest.fixture
def story(store: Path) -> AuditStory:
    return write_story(Settings(sqlite_path=store))


@pytest.fixture
def bundle(story: AuditStory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "deal.zip"
    assert main(["export", str(story.deal_id), "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def _checker(bundle: Path, tmp_path: Path) -> list[str]:
    """The checker shipped in the bundle, run with the standard library only."""
    where = tmp_path / "checker"
    where.mkdir(exist_ok=True)
    with zipfile.ZipFile(bundle) as z:
        for name in ("bundle_check.py", "proofs.py", "signed.py"):
            z.extract(name, where)
    return [sys.executable, "-I", str(where / "bundle_check.py")]


def _check(bundle: Path, checked: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_checker(bundle, tmp_path), str(checked)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rezip(bundle: Path, out: Path, edit: Callable[[str, bytes], bytes]) -> Path:
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, edit(item.filename, src.read(item)))
    return out


def _edit_lines(bundle: Path, out: Path, change: Callable[[list[Line]], None]) -> Path:
    """Change parsed lines and write them back exactly as the exporter formats them."""

    def edit(name: str, data: bytes) -> bytes:
        if name != "events.jsonl":
            return data
        lines = [json.loads(line) for line in data.decode().splitlines()]
        change(lines)
        return "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()

    return _rezip(bundle, out, edit)


def _find(lines: list[Line], event_type: str) -> Line:
    return next(line for line in lines if line["event_type"] == event_type)


def _set(event_type: str, field: str, value: Any) -> Callable[[list[Line]], None]:
    def change(lines: list[Line]) -> None:
        _find(lines, event_type)[field] = value

    return change


def _swap_positions(first: str, second: str) -> Callable[[list[Line]], None]:
    def change(lines: list[Line]) -> None:
        a, b = _find(lines, first), _find(lines, second)
        a["position"], b["position"] = b["position"], a["position"]

    return change


def _year_2020(lines: list[Line]) -> None:
    line = _find(lines, "dealledger.deal.won.v1")
    line["occurred_at"] = "2020" + line["occurred_at"][4:]


def _extra_field(lines: list[Line]) -> None:
    _find(lines, "dealledger.deal.won.v1")["approved_by"] = "user:cfo(admin)"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_set("dealledger.deal.won.v1", "actor", "user:intruder(admin)"), id="actor"),
        pytest.param(_year_2020, id="occurred_at"),
        pytest.param(
            _set("dealledger.deal.stage_changed.v1", "event_type", "dealledger.deal.won.v1"),
            id="event_type",
        ),
        pytest.param(
            _set("dealledger.deal.won.v1", "aggregate_type", "registration"), id="aggregate_type"
        ),
        pytest.param(
            _swap_positions("dealledger.deal.stage_changed.v1", "dealledger.deal.won.v1"),
            id="positions-in-one-stream",
        ),
        pytest.param(
            _swap_positions(
                "dealledger.registration.submitted.v1", "dealledger.channel_protection.granted.v1"
            ),
            id="positions-across-streams",
        ),
        pytest.param(_extra_field, id="an-added-field"),
    ],
)
def test_forged_metadata_breaks_the_bundle(
    change: Callable[[list[Line]], None], bundle: Path, tmp_path: Path
) -> None:
    forged = _edit_lines(bundle, tmp_path / "forged.zip", change)
    result = _check(bundle, forged, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("BROKEN")


def test_a_forged_manifest_breaks_the_bundle(
    story: AuditStory, bundle: Path, tmp_path: Path
) -> None:
    def edit(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["deal_id"] = str(story.registration_id)
        return json.dumps(manifest, indent=2, sort_keys=True).encode()

    result = _check(bundle, _rezip(bundle, tmp_path / "forged.zip", edit), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr


def test_a_signed_bundle_is_anchored_and_pinned_to_its_key(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = _check(bundle, bundle, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "anchored to the ledger's checkpoint of" in ok.stdout
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
    pinned = [*_checker(bundle, tmp_path), str(bundle), "--public-key", manifest["public_key"]]
    assert subprocess.run(pinned, capture_output=True, timeout=60, check=False).returncode == 0
    other = base64.b64encode(bytes(range(32))).decode()
    wrong = subprocess.run(
        [*pinned[:-1], other], capture_output=True, text=True, timeout=60, check=False
    )
    assert wrong.returncode == 1
    assert "not the one given" in wrong.stdout


def test_a_line_removed_from_a_signed_bundle_with_its_manifest_recomputed_is_caught(
    bundle: Path, tmp_path: Path
) -> None:
    """The chain alone cannot see a stream's newest events cut off when the manifest is
    recomputed to match; the head proof against the signed checkpoint can."""

    lines = z_lines(bundle)
    last, before = json.loads(lines[-1]), json.loads(lines[-2])
    assert before["originator_id"] == last["originator_id"]

    def cut(name: str, data: bytes) -> bytes:
        if name == "events.jsonl":
            return "".join(line + "\n" for line in lines[:-1]).encode()
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["event_count"] -= 1
            manifest["last_position"] = max(json.loads(line)["position"] for line in lines[:-1])
            manifest["chain_heads"][last["originator_id"]] = {
                "version": before["originator_version"],
                "hash": before["hash"],
            }
            return json.dumps(manifest, indent=2, sort_keys=True).encode()
        return data

    cut_bundle = _rezip(bundle, tmp_path / "cut.zip", cut)
    result = _check(bundle, cut_bundle, tmp_path)
    assert result.returncode == 1, result.stdout
    assert "is not its head at the checkpoint" in result.stdout


def z_lines(bundle: Path) -> list[str]:
    with zipfile.ZipFile(bundle) as z:
        return z.read("events.jsonl").decode().splitlines()


def test_a_proof_taken_from_another_checkpoint_breaks_the_bundle(
    story: AuditStory, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from commands.models import AddDealNote
    from infra.bootstrap import build_ledger

    ledger = build_ledger(Settings(sqlite_path=Path(os.environ["DEALLEDGER_SQLITE_PATH"])))
    Driver(ledger, "later").run(AddDealNote, SALES, deal_id=story.deal_id, text="later")
    ledger.close()
    later = tmp_path / "later.zip"
    assert main(["export", str(story.deal_id), "--out", str(later)]) == 0
    capsys.readouterr()
    assert _check(later, later, tmp_path).returncode == 0
    later_lines = {
        (line["originator_id"], line["originator_version"]): line
        for line in map(json.loads, z_lines(later))
    }

    def graft(lines: list[Line]) -> None:
        # The same event's proof, but in the later (bigger) tree: genuine, and wrong here.
        line = _find(lines, "dealledger.deal.won.v1")
        line["inclusion"] = later_lines[(line["originator_id"], line["originator_version"])][
            "inclusion"
        ]

    result = _check(bundle, _edit_lines(bundle, tmp_path / "graft.zip", graft), tmp_path)
    assert result.returncode == 1, result.stdout
    assert "is not leaf" in result.stdout

    def newer_checkpoint(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        with zipfile.ZipFile(later) as z:
            manifest["checkpoint"] = json.loads(z.read("manifest.json"))["checkpoint"]
        return json.dumps(manifest, indent=2, sort_keys=True).encode()

    swapped = _rezip(bundle, tmp_path / "swapped.zip", newer_checkpoint)
    result = _check(bundle, swapped, tmp_path)
    assert result.returncode == 1, result.stdout


def test_without_a_signing_key_the_bundle_says_it_is_unsigned(
    story: AuditStory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("DEALLEDGER_SIGNING_KEY_FILE")
    out = tmp_path / "unsigned.zip"
    assert main(["export", str(story.deal_id), "--out", str(out)]) == 0
    assert "UNSIGNED" in capsys.readouterr().err
    result = _check(out, out, tmp_path)
    assert result.returncode == 0, result.stdout
    assert "UNSIGNED" in result.stdout


SWEEP = 300
# The checker, imported from the bundle under `python3 -I`, judging every edited copy.
_SWEEP_DRIVER = """
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import bundle_check
codes = []
for path in sys.argv[2:]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        codes.append(bundle_check.main(["bundle_check.py", path]))
print(json.dumps(codes))
"""


def _locate(contents: dict[str, bytes], offset: int) -> tuple[str, int]:
    """The entry and the offset within it of byte `offset` of all entries together."""
    for name, data in contents.items():
        if offset < len(data):
            return name, offset
        offset -= len(data)
    raise IndexError(offset)


def test_every_one_byte_edit_of_a_bundle_is_detected(bundle: Path, tmp_path: Path) -> None:
    """300 random one-byte edits of what the checker judges (the events, the manifest and
    the README): each makes the checker fail (1) or the bundle unreadable (2), while
    the untouched bundle checks OK."""
    with zipfile.ZipFile(bundle) as z:
        contents = {name: z.read(name) for name in ("events.jsonl", "manifest.json", "README.txt")}
    total = sum(len(data) for data in contents.values())
    rng = random.Random(20261201)
    edited: list[tuple[Path, str, int, int]] = []
    for n in range(SWEEP):
        name, offset = _locate(contents, rng.randrange(total))
        data = contents[name]
        new = rng.choice([b for b in range(256) if b != data[offset]])
        changed = data[:offset] + bytes([new]) + data[offset + 1 :]

        def edit(entry: str, original: bytes, name: str = name, changed: bytes = changed) -> bytes:
            return changed if entry == name else original

        edited.append((_rezip(bundle, tmp_path / f"edit-{n}.zip", edit), name, offset, new))
    where = tmp_path / "checker"
    _checker(bundle, tmp_path)
    result = subprocess.run(
        [
            *(sys.executable, "-I", "-c", _SWEEP_DRIVER, str(where), str(bundle)),
            *(str(e[0]) for e in edited),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    untouched, *codes = json.loads(result.stdout)
    assert untouched == 0
    assert len(codes) == SWEEP
    undetected = [
        f"{name} byte {offset} -> {new:#04x}"
        for code, (_, name, offset, new) in zip(codes, edited, strict=True)
        if code == 0
    ]
    assert undetected == []
    assert set(codes) <= {1, 2}


# -- stores hashed before ledger positions were covered --------------------------------------


def _hash_the_old_way(store: Path) -> None:
    """Rewrite the store as the recorder before hash schemes wrote it: no `scheme`
    column, each row hashed without its position, and no ledger tree (the next start
    seals the store and builds the tree over these hashes)."""
    with sqlite3.connect(store) as conn:
        conn.execute("ALTER TABLE stored_events_hashes DROP COLUMN scheme")
        conn.execute("ALTER TABLE stored_events_hashes DROP COLUMN leaf")
        for table in ("stored_events_tree", "stored_events_seal", "stored_events_checkpoints"):
            conn.execute(f"DROP TABLE {table}")
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY originator_id, originator_version"
        ).fetchall()
        prev: dict[str, str] = {}
        for originator_id, version, topic, state in rows:
            stream = str(__import__("uuid").UUID(originator_id))
            before = prev.get(stream, "0" * 64)
            digest = chain_hash(before, stream, version, topic, state)
            conn.execute(
                "UPDATE stored_events_hashes SET prev_hash = ?, hash = ? "
                "WHERE originator_id = ? AND originator_version = ?",
                (before, digest, originator_id, version),
            )
            prev[stream] = digest


def test_a_store_hashed_the_old_way_still_verifies_and_new_events_seal_their_position(
    story: AuditStory, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from commands.models import SuspendPartner
    from infra.bootstrap import build_ledger

    _hash_the_old_way(store)
    assert main(["verify", "--all"]) == 0
    assert "were hashed before ledger positions were" in capsys.readouterr().out
    old_bundle = tmp_path / "old.zip"
    assert main(["export", str(story.deal_id), "--out", str(old_bundle)]) == 0
    capsys.readouterr()
    assert _check(old_bundle, old_bundle, tmp_path).returncode == 0

    ledger = build_ledger(Settings(sqlite_path=store))
    Driver(ledger, "later").run(SuspendPartner, MANAGER, partner_code="contoso", reason="audit")
    ledger.close()
    assert main(["verify", "--all"]) == 0
    capsys.readouterr()
    with sqlite3.connect(store) as conn:
        (scheme,) = conn.execute(
            "SELECT h.scheme FROM stored_events_hashes h JOIN stored_events e "
            "ON h.originator_id = e.originator_id AND h.originator_version = e.originator_version "
            "WHERE e.rowid = (SELECT max(rowid) FROM stored_events)"
        ).fetchone()
        assert scheme == 2
        conn.execute(
            "UPDATE stored_events SET rowid = rowid + 100 "
            "WHERE rowid = (SELECT max(rowid) FROM stored_events)"
        )
    assert main(["verify", "--all"]) == 1
    assert "content or ledger position does not match its hash" in capsys.readouterr().out


def test_the_checker_shows_actors_as_the_ledger_names_them() -> None:
    from domain.values import Cause

    for actor in (SALES, partner("acme"), SYSTEM):
        state = json.dumps(
            {
                "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-05T09:00:00+00:00"},
                "cause": {"_type_": "cause", "_data_": Cause(actor, "c1").to_json()},
            }
        ).encode()
        assert shown_fields("domain.deal:Deal.Won", state)["actor"] == str(actor)


def test_the_checker_names_every_event_type_as_the_published_contract_does() -> None:
    # bundle_check.py travels alone inside bundles (stdlib only), so it keeps its own
    # copy of the event-type naming rule; this keeps the copy equal to the original.
    from domain.values import Actor, Cause
    from projections.contract.schemas import event_classes, event_type_of_class

    cause = Cause(Actor.partner("acme"), "c1").to_json()
    for cls in event_classes():
        version = getattr(cls, "class_version", 1)
        state = json.dumps(
            {
                "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-05T09:00:00+00:00"},
                "cause": {"_type_": "cause", "_data_": cause},
                **({"class_version": version} if version > 1 else {}),
            }
        ).encode()
        shown = shown_fields(f"{cls.__module__}:{cls.__qualname__}", state)
        aggregate_type, event_type = event_type_of_class(cls)
        assert (shown["aggregate_type"], shown["event_type"]) == (aggregate_type, event_type)
