"""Shared plumbing for the end-to-end tests: isolated settings, waiting, dumping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def isolated_settings(database_url: str, kafka_bootstrap: str, **overrides: Any) -> Settings:
    """A schema and topics of our own, so tests never see each other's data."""
    tag = uuid.uuid4().hex[:10]
    schema = f"e2e_{tag}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    values: dict[str, Any] = {
        "database_url": database_url,
        "database_schema": schema,
        "kafka_bootstrap": kafka_bootstrap,
        "events_topic": f"e2e.{tag}.events",
        "events_dlq_topic": f"e2e.{tag}.events.dlq",
        "commands_topic": f"e2e.{tag}.commands",
        "command_results_topic": f"e2e.{tag}.command-results",
        "commands_dlq_topic": f"e2e.{tag}.commands.dlq",
        "checkpoints_topic": f"e2e.{tag}.checkpoints",
        "projector_group": f"e2e.{tag}.projectors",
        "topic_partitions": 4,
        **overrides,
    }
    return Settings(**values)


def drop_schema(settings: Settings) -> None:
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {settings.database_schema} CASCADE")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `dealledger` subprocess use these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALLEDGER_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, dict):
            import json

            value = json.dumps({k: str(v) for k, v in value.items()})
        env[f"DEALLEDGER_{name.upper()}"] = str(value)
    env["DEALLEDGER_LOG_FORMAT"] = "json"
    return env


def start_cli(settings: Settings, *args: str, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        env=settings_env(settings),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def projector_caught_up(settings: Settings, relay: Any) -> bool:
    """Nothing left to publish, and nothing published left to project."""
    from consumers.projector_host import ProjectorHost
    from infra.logging import get_logger

    if relay.status().lag:
        return False
    host = ProjectorHost(settings, get_logger("test"))
    try:
        return sum(host.lag().values()) == 0
    finally:
        host.close()
