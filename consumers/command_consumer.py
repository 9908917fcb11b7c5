"""`dealledger command-consumer`: commands from the Kafka topic dealledger.commands.v1.

Envelope (JSON value):
    {"type": "SubmitRegistration", "command_id": "<client idempotency key>",
     "api_key": "dl_<id>_<secret>", "correlation_id": "...", "payload": {...}}
With `trust_key_ids` (a topic whose producers the broker authenticates) a bare
`"key_id"` may name the principal instead of the full key.

Every outcome goes to dealledger.command-results.v1 keyed by the client's command id:
accepted with the ledger position it wrote, or rejected with the same problem body
(code, status, detail) the HTTP API would give. A message that is not a command
envelope goes to dealledger.commands.dlq with the reason in its headers (by
reference when it is too large to copy; see consumers/dead_letters.py). The
ledger's idempotency by command id means a redelivered message never applies twice;
its result is published again, marked `replayed`.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from consumers.dead_letters import DeadLetters
from domain.errors import DomainError
from infra.gateway.gateway import Gateway
from infra.gateway.policy import policy_for
from infra.gateway.principals import IDEMPOTENCY_KEY_MAX, Principal, Unauthenticated
from infra.gateway.problems import InvalidRequest, Refusal, refusal
from infra.kafka.admin import ensure_topics
from infra.reconnect import run_until_stopped
from infra.settings import Settings

GROUP_ID = "dealledger-command-consumer"
# Partitions of one poll handled at the same time.
PARTITION_WORKERS = 8
_ENVELOPE_KEYS = {"type", "command_id", "api_key", "key_id", "correlation_id", "payload"}


class MalformedCommand(ValueError):
    """Not a command envelope: dead-lettered, since no result can be addressed."""


@dataclass(frozen=True)
class Envelope:
    type: str
    command_id: str
    api_key: str | None
    key_id: str | None
    correlation_id: str | None
    payload: dict[str, Any]


def parse_envelope(value: bytes | None) -> Envelope:
    try:
        # UTF-8 only (RFC 8259): json.loads would also guess UTF-16 and UTF-32.
        text = (value or b"").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedCommand(f"value is not UTF-8 text: {exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedCommand(f"value is not JSON: {exc}") from None
    except RecursionError:
        raise MalformedCommand("value is JSON nested too deeply to read") from None
    if not isinstance(raw, dict):
        raise MalformedCommand("value is not a JSON object")
    unknown = set(raw) - _ENVELOPE_KEYS
    if unknown:
        raise MalformedCommand(f"unknown envelope fields: {', '.join(sorted(unknown))}")
    command_id = raw.get("command_id")
    if not isinstance(command_id, str) or not 0 < len(command_id) <= IDEMPOTENCY_KEY_MAX:
        raise MalformedCommand(
            f"command_id must be a string of 1 to {IDEMPOTENCY_KEY_MAX} characters"
        )
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise MalformedCommand("type must be a string naming a command")
    payload = raw.get("payload", {})
    if not isinstance(payload, dict):
        raise MalformedCommand("payload must be a JSON object")
    for name in ("api_key", "key_id", "correlation_id"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise MalformedCommand(f"{name} must be a string")
    return Envelope(
        kind, command_id, raw.get("api_key"), raw.get("key_id"), raw.get("correlation_id"), payload
    )


class CommandConsumer:
    def __init__(
        self,
        settings: Settings,
        gateway: Gateway,
        log: Any,
        *,
        trust_key_ids: bool = False,
        group_id: str = GROUP_ID,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.log = log
        self.trust_key_ids = trust_key_ids
        self.group_id = group_id
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self.dead_letters = DeadLetters(
            lambda: self._connect()[1], settings.commands_dlq_topic, group_id, log, "command"
        )
        self._dead: list[tuple[Any, str]] = []
        self.accepted = self.rejected = 0
        self._counting = threading.Lock()
        # Partitions are handled side by side (each in its own order), so that their
        # commands reach the ledger together and share its commits.
        self._workers = ThreadPoolExecutor(PARTITION_WORKERS, thread_name_prefix="commands")

    @property
    def dead_lettered(self) -> int:
        return self.dead_letters.count

    # -- deciding ------------------------------------------------------------------

    def _principal(self, envelope: Envelope) -> Principal:
        if envelope.api_key:
            return self.gateway.authenticate(envelope.api_key)
        if envelope.key_id and self.trust_key_ids:
            return self.gateway.principal_for_key_id(envelope.key_id)
        raise Unauthenticated(
            "an api_key is required (a bare key_id only on a trusted command topic)", "missing"
        )

    def decide(self, envelope: Envelope) -> dict[str, Any]:
        """The result message for one well-formed envelope."""

        def rejected(refused: Refusal) -> dict[str, Any]:
            with self._counting:
                self.rejected += 1
            return {
                "command_id": envelope.command_id,
                "type": envelope.type,
                "status": "rejected",
                "problem": refused.body(f"/commands/{envelope.command_id}"),
            }

        try:
            policy_for(envelope.type)  # an unknown type is refused before the key is read
            # The same gateway as HTTP: role, partner scope (others' resources are 404),
            # idempotency key scoped to the principal, actor from the key.
            accepted = self.gateway.issue(
                self._principal(envelope),
                envelope.type,
                envelope.payload,
                idempotency_key=envelope.command_id,
                correlation_id=envelope.correlation_id,
                where="payload",
            )
        except (Unauthenticated, InvalidRequest, DomainError) as exc:
            return rejected(refusal(exc))
        with self._counting:
            self.accepted += 1
        return {
            "command_id": envelope.command_id,
            "type": envelope.type,
            "status": "accepted",
            "position": accepted.position,
            "replayed": accepted.replayed,
            "aggregate_id": accepted.aggregate_id,
            "result": accepted.result,
        }

    # -- Kafka -------------------------------------------------------------------

    def _connect(self) -> tuple[KafkaConsumer, KafkaProducer]:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                max_block_ms=15000,
            )
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                self.settings.commands_topic,
                bootstrap_servers=self.settings.bootstrap_servers,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=100,
            )
        return self._consumer, self._producer

    def poll_once(self, timeout_ms: int = 500) -> int:
        consumer, producer = self._connect()
        batches = [records for records in consumer.poll(timeout_ms=timeout_ms).values() if records]
        self._dead = []
        if len(batches) > 1:
            # list() waits for every partition and raises the first error any raised.
            list(self._workers.map(self._handle_in_order, batches))
        else:
            for records in batches:
                self._handle_in_order(records)
        handled = sum(len(records) for records in batches)
        if handled:
            # Results and dead letters are acknowledged before the offsets move on,
            # so a crash re-delivers (and the ledger replays) rather than loses.
            producer.flush(timeout=30)
            self.dead_letters.publish(self._dead, timeout=30)
            consumer.commit()
        return handled

    def _handle_in_order(self, records: list[Any]) -> None:
        for record in records:
            self._handle(record)

    def _handle(self, record: Any) -> None:
        _, producer = self._connect()
        try:
            envelope = parse_envelope(record.value)
        except MalformedCommand as exc:
            self._dead.append((record, str(exc)))
            return
        except Exception as exc:  # whatever else the record makes the parser do
            self._dead.append((record, f"{type(exc).__name__}: {exc}"))
            return
        result = self.decide(envelope)
        producer.send(
            self.settings.command_results_topic,
            key=envelope.command_id.encode(),
            value=json.dumps(result, sort_keys=True).encode(),
            headers=[("content-type", b"application/json")],
        )
        self.log.info(
            "command handled",
            command_id=envelope.command_id,
            type=envelope.type,
            status=result["status"],
            partition=record.partition,
            offset=record.offset,
        )

    def run(self, stop: threading.Event) -> None:
        ensured = False

        def step() -> None:
            nonlocal ensured
            if not ensured:
                ensure_topics(
                    self.settings,
                    self.log,
                    [
                        self.settings.commands_topic,
                        self.settings.command_results_topic,
                        self.settings.commands_dlq_topic,
                    ],
                )
                ensured = True
            self.poll_once()

        run_until_stopped(step, stop, retry_on=KafkaError, on_retry=self._on_kafka_error)
        self.close()

    def _on_kafka_error(self, exc: BaseException, attempt: int, delay: float) -> None:
        self.log.warning("kafka unavailable; reconnecting", error=repr(exc))
        self.close()

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:  # a consumer of a dead broker may fail to close
                self.log.debug("closing consumer failed", error=repr(exc))
            self._consumer = None
        if self._producer is not None:
            try:
                self._producer.flush(timeout=10)
                self._producer.close(timeout=5)
            except Exception as exc:
                self.log.debug("closing producer failed", error=repr(exc))
            self._producer = None
