"""Signing keys and checkpoints on the embedded store, as an operator sets them up:
`signing-key create`, `checkpoint`, `verify` against the file, and the embedded feed
of `serve` signing checkpoints by itself as the ledger grows."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from infra.audit import signed
from infra.audit.checkpoints import read_file
from infra.bootstrap import Wiring
from infra.cli import main
from infra.settings import Settings
from tests.support.env import without_settings
from tests.unit.audit_story import write_story


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    without_settings(monkeypatch)
    monkeypatch.setenv("DEALLEDGER_SQLITE_PATH", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DEALLEDGER_CHECKPOINT_FILE", str(tmp_path / "checkpoints.jsonl"))
    return tmp_path


def test_an_operator_creates_a_key_signs_a_checkpoint_and_verifies_against_it(
    operator: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_story(Settings(sqlite_path=operator / "ledger.sqlite"))
    key = operator / "signing.pem"
    assert main(["signing-key", "create", "--out", str(key)]) == 0
    public = capsys.readouterr().out.strip()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert main(["signing-key", "create", "--out", str(key)]) == 2  # never overwritten
    assert "not overwritten" in capsys.readouterr().err

    monkeypatch.setenv("DEALLEDGER_CHECKPOINT_PUBLIC_KEY", public)
    (operator / "checkpoints.jsonl").touch()
    assert main(["verify", "--all"]) == 1  # a key is trusted, but nothing was signed yet
    assert "no signed checkpoint could be read" in capsys.readouterr().out

    assert main(["checkpoint"]) == 2  # the public key alone cannot sign
    assert "no signing key" in capsys.readouterr().err
    monkeypatch.setenv("DEALLEDGER_SIGNING_KEY_FILE", str(key))
    assert main(["checkpoint"]) == 0
    assert main(["checkpoint"]) == 0
    assert "unchanged since the checkpoint of" in capsys.readouterr().out
    assert len(read_file(operator / "checkpoints.jsonl").checkpoints) == 1

    assert main(["verify", "--all"]) == 0
    out = capsys.readouterr().out
    assert "consistent with the checkpoint of" in out
    assert signed.key_id(base64.b64decode(public)) in out


def test_without_kafka_the_embedded_feed_signs_checkpoints_as_the_ledger_grows(
    operator: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["signing-key", "create", "--out", str(operator / "signing.pem")]) == 0
    capsys.readouterr()
    settings = Settings(
        sqlite_path=operator / "ledger.sqlite",
        checkpoint_file=operator / "checkpoints.jsonl",
        signing_key_file=operator / "signing.pem",
        checkpoint_every_events=10,
    )
    write_story(settings)
    wiring = Wiring(settings)
    feed = wiring.read_feed()
    feed.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not settings.checkpoint_file.exists():  # type: ignore[union-attr]
            time.sleep(0.1)
    finally:
        feed.stop()
        wiring.close()
    written = read_file(operator / "checkpoints.jsonl").checkpoints
    assert written, "the feed signed no checkpoint"
    assert written[-1]["tree_size"] >= 10


def test_a_key_file_that_is_no_key_is_a_clear_configuration_error(
    operator: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_story(Settings(sqlite_path=operator / "ledger.sqlite"))
    (operator / "not-a-key.pem").write_text("hello\n")
    monkeypatch.setenv("DEALLEDGER_SIGNING_KEY_FILE", str(operator / "not-a-key.pem"))
    (operator / "checkpoints.jsonl").touch()  # verify then needs the key to read it
    for command in (["checkpoint"], ["verify", "--all"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "not-a-key.pem is not an unencrypted PEM private key" in err
