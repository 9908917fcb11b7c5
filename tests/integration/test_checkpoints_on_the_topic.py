"""The relay signs checkpoints as the ledger grows and publishes them to the checkpoint
topic (infinite retention, one partition) and the checkpoint file; `verify` reads the
topic, outside the database, and holds the store to it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from jsonschema import Draft202012Validator
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from infra.audit import signed
from infra.audit.checkpoints import new_key, private_pem, public_raw, read_topic
from infra.bootstrap import Wiring
from tests.integration.flow import ROOT, drop_schema, isolated_settings, settings_env
from tests.support.tampering import RawStore
from tests.unit.audit_story import write_story

KAFKA_LIBS = Path(ROOT) / ".cache" / "kafka" / "libs"


def test_the_relay_publishes_signed_checkpoints_that_verify_reads_from_the_topic(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    key = new_key()
    (tmp_path / "signing.pem").write_bytes(private_pem(key))
    settings = isolated_settings(
        database_url,
        kafka_bootstrap,
        signing_key_file=tmp_path / "signing.pem",
        checkpoint_file=tmp_path / "checkpoints.jsonl",
        checkpoint_every_events=20,
    )
    try:
        story = write_story(settings)  # about 50 events: two checkpoints are due
        wiring = Wiring(settings)
        stop = threading.Event()
        relay = wiring.relay()
        runner = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_sleep": 0.2})
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if read_topic(settings, timeout=5).checkpoints:
                    break
                time.sleep(0.5)
        finally:
            stop.set()
            runner.join(30)
            wiring.close()
        outside = read_topic(settings)
        assert outside.checkpoints, "no checkpoint reached the topic"
        newest = outside.checkpoints[-1]
        assert signed.signature_problem(newest, public_raw(key)) is None
        assert newest["tree_size"] >= 20
        on_file = [json.loads(line) for line in settings.checkpoint_file.read_text().splitlines()]  # type: ignore[union-attr]
        assert newest in on_file

        # Kafka's own tools see the topic as the issue asks: kept forever, in order.
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:
            described = admin.describe_topics([settings.checkpoints_topic])
            assert len(described[0]["partitions"]) == 1
            config = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, settings.checkpoints_topic)]
            )
            entries = config["topic"][settings.checkpoints_topic]
            assert entries["retention.ms"]["value"] == "-1"
            assert entries["retention.bytes"]["value"] == "-1"
        finally:
            admin.close()
        consumed = subprocess.run(
            [
                "java", "-cp", f"{KAFKA_LIBS}/*",
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                "--bootstrap-server", settings.bootstrap_servers[0],
                "--topic", settings.checkpoints_topic,
                "--from-beginning", "--max-messages", "1", "--timeout-ms", "30000",
            ],
            capture_output=True, text=True, timeout=90, check=True,
        )  # fmt: skip
        assert signed.parse(consumed.stdout.strip().splitlines()[0]) == outside.checkpoints[0]
        # ... and every message is what the published AsyncAPI document says it is.
        document = json.loads((Path(ROOT) / "docs" / "asyncapi.json").read_text())
        schema = document["components"]["schemas"]["Checkpoint"]
        for checkpoint in outside.checkpoints:
            Draft202012Validator(schema).validate(checkpoint)

        env = settings_env(settings)
        env.pop("DEALLEDGER_CHECKPOINT_FILE")  # the topic is the only outside copy here
        env.pop("DEALLEDGER_SIGNING_KEY_FILE")  # an auditor holds the public key only
        env["DEALLEDGER_CHECKPOINT_PUBLIC_KEY"] = base64.b64encode(public_raw(key)).decode()
        verify = [sys.executable, "-m", "infra.cli", "verify", "--all"]
        ok = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f"topic {settings.checkpoints_topic}" in ok.stdout

        raw = RawStore(settings)
        raw.rewrite(lambda rows: [r for r in rows if r.stream != story.rival_registration_id])
        broken = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=120)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        assert broken.stdout.startswith("BROKEN: ")
        assert f"checkpoint of {newest['tree_size']} events" in broken.stdout
    finally:
        drop_schema(settings)
