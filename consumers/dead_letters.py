"""Dead-letter publishing: a message we cannot process is kept, with the reason.

A dead letter is normally a COPY: the original key, value and headers plus `dlq_*`
headers saying where it came from and why it failed. A record too large to copy with
those headers, or whose copy the broker refuses, is dead-lettered BY REFERENCE
instead: its source topic, partition and offset, the size and SHA-256 of its value,
and the value's first REFERENCE_BODY_BYTES bytes. Either way the consumer can move
past the record; only a dead-letter topic that takes nothing at all stops it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

# kafka-python's default max_request_size; a copy must fit in one request with the
# framing of its batch and record, for which this leaves generous room.
MAX_REQUEST_BYTES = 1_048_576
MAX_COPY_BYTES = MAX_REQUEST_BYTES - 16 * 1024
REFERENCE_BODY_BYTES = 4096
REFERENCE_KEY_BYTES = 1024
_PER_HEADER_BYTES = 8  # the varint lengths a header adds on the wire, at most


class DeadLetterRefused(KafkaError):  # type: ignore[misc]
    """The dead-letter topic refused even a by-reference record: nothing can be kept."""


def dead_letter_headers(record: Any, error: str, consumer: str) -> list[tuple[str, bytes]]:
    """The original headers plus where the message came from and why it failed."""
    return [*list(record.headers or []), *_dlq_headers(record, error, consumer)]


def reference_headers(record: Any, error: str, consumer: str) -> list[tuple[str, bytes]]:
    """Where the message is and how to recognise it, for a record not copied whole."""
    value = bytes(record.value or b"")
    headers = [
        *_dlq_headers(record, error, consumer),
        ("dlq_by_reference", b"true"),
        ("dlq_value_bytes", str(len(value)).encode()),
        ("dlq_value_sha256", hashlib.sha256(value).hexdigest().encode()),
    ]
    key = bytes(record.key or b"")
    if len(key) > REFERENCE_KEY_BYTES:
        headers += [
            ("dlq_key_bytes", str(len(key)).encode()),
            ("dlq_key_sha256", hashlib.sha256(key).hexdigest().encode()),
        ]
    return headers


def _dlq_headers(record: Any, error: str, consumer: str) -> list[tuple[str, bytes]]:
    return [
        ("dlq_error", error[:2000].encode()),
        ("dlq_consumer", consumer.encode()),
        ("dlq_source_topic", str(record.topic).encode()),
        ("dlq_source_partition", str(record.partition).encode()),
        ("dlq_source_offset", str(record.offset).encode()),
    ]


def copy_bytes(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> int:
    """What a record with these parts takes in a request, near enough (an upper bound)."""
    size = len(key or b"") + len(value or b"") + 32
    return size + sum(len(name.encode()) + len(data) + _PER_HEADER_BYTES for name, data in headers)


def make_dlq_producer(bootstrap_servers: list[str]) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_block_ms=15000,
        request_timeout_ms=15000,
        max_request_size=MAX_REQUEST_BYTES,
        reconnect_backoff_max_ms=1000,
    )


@dataclass
class _Letter:
    record: Any
    error: str
    by_reference: bool
    cause: str  # why by reference ("" for a copy)
    future: Any = None
    refused: KafkaError | None = None  # a failure raised by `send` itself


class DeadLetters:
    """Publishes dead letters to one topic and waits until the broker has them all.

    `producer` returns the producer to use (the caller's, so it may share one with its
    other output); `what` names the records in the log ("message", "command")."""

    def __init__(
        self,
        producer: Callable[[], KafkaProducer],
        topic: str,
        consumer: str,
        log: Any,
        what: str = "message",
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.consumer = consumer
        self.log = log
        self.what = what
        self.count = 0
        self.by_reference = 0

    def publish(self, dead: Sequence[tuple[Any, str]], timeout: float = 30.0) -> None:
        """Dead-letter each (record, reason) and wait for the broker's acknowledgement.

        Raises KafkaError (so the caller retries the batch and moves no offset) when
        Kafka is unavailable, or DeadLetterRefused when even a by-reference record is
        refused."""
        if not dead:
            return
        letters = [self._send(self._letter(record, error)) for record, error in dead]
        self.producer().flush(timeout=timeout)
        retry = []
        for letter in letters:
            failure = self._failure(letter)
            if failure is None:
                self._done(letter)
            elif letter.by_reference or failure.retriable:
                raise self._fatal(letter, failure)
            else:  # the broker refused this one record's copy, e.g. as too large
                letter.by_reference, letter.cause = True, f"copy refused: {failure!r}"
                retry.append(self._send(letter))
        if retry:
            self.producer().flush(timeout=timeout)
            for letter in retry:
                failure = self._failure(letter)
                if failure is not None:
                    raise self._fatal(letter, failure)
                self._done(letter)

    def _letter(self, record: Any, error: str) -> _Letter:
        size = copy_bytes(record.key, record.value, dead_letter_headers(record, error, ""))
        size += len(self.consumer.encode())
        if size > MAX_COPY_BYTES:
            return _Letter(record, error, True, f"too large to copy ({size} bytes)")
        return _Letter(record, error, False, "")

    def _send(self, letter: _Letter) -> _Letter:
        record = letter.record
        if letter.by_reference:
            key = None if record.key is None else bytes(record.key)[:REFERENCE_KEY_BYTES]
            value: bytes | None = bytes(record.value or b"")[:REFERENCE_BODY_BYTES]
            headers = reference_headers(record, letter.error, self.consumer)
        else:
            key, value = record.key, record.value
            headers = dead_letter_headers(record, letter.error, self.consumer)
        letter.refused = None
        try:
            letter.future = self.producer().send(self.topic, key=key, value=value, headers=headers)
        except KafkaError as exc:
            if exc.retriable:
                raise  # no broker: the caller retries the batch
            letter.future, letter.refused = None, exc  # e.g. larger than max_request_size
        return letter

    @staticmethod
    def _failure(letter: _Letter) -> KafkaError | None:
        if letter.refused is not None:
            return letter.refused
        future = letter.future
        if future is None or not future.is_done:
            return KafkaError("dead letter not acknowledged in time")
        exc = future.exception
        return exc if isinstance(exc, KafkaError) or exc is None else KafkaError(repr(exc))

    def _fatal(self, letter: _Letter, failure: KafkaError) -> KafkaError:
        if not letter.by_reference:
            return failure
        record = letter.record
        self.log.error(
            f"{self.what} could not be dead-lettered even by reference",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            dlq_topic=self.topic,
            error=repr(failure),
        )
        return DeadLetterRefused(f"{self.topic} refused a by-reference dead letter: {failure!r}")

    def _done(self, letter: _Letter) -> None:
        record = letter.record
        self.count += 1
        fields: dict[str, Any] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": bytes(record.key or b"")[:100].decode("utf-8", "replace"),
            "error": letter.error[:500],
        }
        if not letter.by_reference:
            self.log.warning(f"{self.what} dead-lettered", **fields)
            return
        self.by_reference += 1
        value = bytes(record.value or b"")
        self.log.warning(
            f"{self.what} dead-lettered by reference",
            **fields,
            reason=letter.cause,
            value_bytes=len(value),
            value_sha256=hashlib.sha256(value).hexdigest(),
        )
