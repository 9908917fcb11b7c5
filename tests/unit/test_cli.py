from __future__ import annotations

import subprocess
import sys
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


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo"],
        ["relay"],
        ["project"],
        ["command-consumer"],
        ["serve"],
        ["sweep"],
        ["rebuild"],
        ["schemas"],
        ["history"],
        ["verify"],
        ["export"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
    ],
    ids=lambda argv: " ".join(argv) or "dealledger",
)
def test_help_needs_no_server_nor_a_valid_configuration(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEALLEDGER_DATABASE_URL", "mysql://nope")
    assert main([*argv, "--help"]) == 0
    assert capsys.readouterr().out.startswith("Usage: dealledger")


def test_relay_and_projectors_never_load_the_web_framework() -> None:
    """Start-up time and memory: the relay and the projectors load what they run, and
    the CLI itself loads none of it until a command needs it."""
    probe = (
        "import sys\n"
        "from infra.cli import main\n"
        "main(['relay', '--help'])\n"
        "assert 'infra.bootstrap' not in sys.modules, 'help loaded the write side'\n"
        "import infra.bootstrap, consumers.projector_host, infra.kafka.relay\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette'))\n"
        "assert not web, web\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
