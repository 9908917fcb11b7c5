from __future__ import annotations

from pathlib import Path

import pytest

from infra.cli import main


@pytest.mark.parametrize(
    ("argv", "needs"),
    [
        (["relay"], "DEALLEDGER_DATABASE_URL"),
        (["project"], "DEALLEDGER_DATABASE_URL"),
        (["rebuild", "--from", "kafka"], "DEALLEDGER_DATABASE_URL"),
    ],
)
def test_server_commands_without_servers_say_what_to_set_and_exit_2(
    argv: list[str], needs: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DEALLEDGER_DATABASE_URL", raising=False)
    monkeypatch.delenv("DEALLEDGER_KAFKA_BOOTSTRAP", raising=False)
    assert main(argv) == 2
    assert needs in capsys.readouterr().err


def test_an_invalid_setting_is_a_clear_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEALLEDGER_DATABASE_URL", "mysql://nope")
    assert main(["relay"]) == 2
    assert "invalid configuration" in capsys.readouterr().err


def test_schemas_are_written_where_asked(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    assert main(["schemas", "--out", str(out)]) == 0
    assert (out / "index.json").exists()
    assert (out / "dealledger.deal.won.v1.json").exists()
