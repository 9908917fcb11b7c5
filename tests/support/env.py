"""The test process's environment, as the settings read it."""

from __future__ import annotations

import os

import pytest


def without_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DEALLEDGER_* variable of the caller's shell reaches the test (restored after)."""
    for name in list(os.environ):
        if name.startswith("DEALLEDGER_"):
            monkeypatch.delenv(name)
