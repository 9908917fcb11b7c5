"""`dealledger serve` SIGKILLed while its workers' submissions share group commits.

Eight HTTP clients submit registrations as fast as the API answers; the server is
killed mid-load and started again, and every client re-sends what it never got an
answer to, under the same Idempotency-Key. Afterwards every acknowledged command is
stored exactly once (its registration submitted once, with the id it was answered
with), nothing is stored twice, and `dealledger verify --all` holds.
"""

from __future__ import annotations

import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.bootstrap import build_ledger
from infra.settings import Settings
from tests.integration.flow import ROOT, drop_schema, isolated_settings, settings_env, start_cli
from tests.support.driver import Driver

CLIENTS = 8


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    keys = {f"dl_crashkey{n}_{secrets.token_urlsafe(24)}": f"partner:p{n}" for n in range(CLIENTS)}
    settings = isolated_settings(database_url, kafka_bootstrap).model_copy(
        update={"kafka_bootstrap": None, "api_keys": keys, "postgres_pool_size": 12}
    )
    ledger = build_ledger(settings)
    Driver(ledger, "onboard").onboard(*(f"p{n}" for n in range(CLIENTS)))
    ledger.close()
    yield settings
    drop_schema(settings)


def serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = start_cli(settings, "serve", "--port", str(port), log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.1)
    raise AssertionError("dealledger serve did not become ready")


class Client:
    """Submits registrations; remembers what was acknowledged and what is in doubt."""

    def __init__(self, number: int, key: str) -> None:
        self.code = f"p{number}"
        self.key = key
        self.sent = 0
        self.acknowledged: dict[str, str] = {}  # idempotency key -> registration id
        self.in_doubt: list[str] = []
        self.failures: list[BaseException] = []

    def body(self, idempotency_key: str) -> dict[str, object]:
        return {
            "partner_code": self.code,
            "customer": {
                "name": idempotency_key,
                "domain": f"{idempotency_key}.example",
                "country": "US",
            },
            "product_line": "cloud",
            "estimated_value": {"amount": "5000", "currency": "USD"},
            "expected_close": "2030-06-30",
        }

    def submit(self, base: str, idempotency_key: str) -> bool:
        try:
            response = httpx.post(
                f"{base}/v1/registrations",
                json=self.body(idempotency_key),
                headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": idempotency_key},
                timeout=10,
            )
        except httpx.HTTPError:
            return False
        if response.status_code >= 500:
            return False  # the server went away mid-command: outcome unknown
        assert response.status_code in (200, 201), response.text
        self.acknowledged[idempotency_key] = response.json()["aggregate_id"]
        return True

    def load(self, base: str, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.sent += 1
                idempotency_key = f"{self.code}-c{self.sent}"
                if not self.submit(base, idempotency_key):
                    self.in_doubt.append(idempotency_key)
                    time.sleep(0.05)
        except BaseException as exc:  # asserted by the test
            self.failures.append(exc)


def test_acknowledged_commands_survive_a_sigkill_exactly_once(
    settings: Settings, tmp_path: Path
) -> None:
    port = 19000 + random.randrange(900)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    keys = {principal.split(":")[1]: key for key, principal in settings.api_keys.items()}
    clients = [Client(n, keys[f"p{n}"]) for n in range(CLIENTS)]
    server = serve(settings, port, log)
    stop = threading.Event()
    threads = [threading.Thread(target=c.load, args=(base, stop)) for c in clients]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(30)
        server = serve(settings, port, log)
        for client in clients:
            for idempotency_key in client.in_doubt:
                assert client.submit(base, idempotency_key), idempotency_key
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()

    assert not [f for c in clients for f in c.failures], [f for c in clients for f in c.failures]
    acknowledged = {k: v for c in clients for k, v in c.acknowledged.items()}
    assert len(acknowledged) >= CLIENTS, "the load never got going"
    ledger = build_ledger(settings)
    try:
        rows = ledger.recorder.select_notifications(start=1, limit=1_000_000)
    finally:
        ledger.close()
    submitted = Counter(
        str(n.originator_id) for n in rows if n.topic.endswith("Registration.Submitted")
    )
    assert set(submitted.values()) == {1}
    assert set(acknowledged.values()) == set(submitted), "stored and acknowledged differ"
    verify = subprocess.run(
        [sys.executable, "-m", "infra.cli", "verify", "--all"],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
