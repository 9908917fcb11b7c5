"""The main job on the embedded default: placeholder until the write side lands."""

from __future__ import annotations

from infra.settings import Settings


def run_demo(settings: Settings, *, fresh: bool = True) -> int:
    print("Deal Ledger demo: the write side is not built yet; nothing is stored.")
    print(f"The embedded store would live at {settings.sqlite_path}.")
    return 0
