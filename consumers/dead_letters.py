"""Dead-letter publishing: a message we cannot process is kept, with the reason."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer


def dead_letter_headers(record: Any, error: str, consumer: str) -> list[tuple[str, bytes]]:
    """The original headers plus where the message came from and why it failed."""
    original = list(record.headers or [])
    return [
        *original,
        ("dlq_error", error[:2000].encode()),
        ("dlq_consumer", consumer.encode()),
        ("dlq_source_topic", str(record.topic).encode()),
        ("dlq_source_partition", str(record.partition).encode()),
        ("dlq_source_offset", str(record.offset).encode()),
    ]


def make_dlq_producer(bootstrap_servers: list[str]) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_block_ms=15000,
        request_timeout_ms=15000,
    )
