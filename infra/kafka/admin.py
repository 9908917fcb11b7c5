"""Kafka topics the ledger needs, created at start-up when missing."""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from infra.settings import Settings


def ledger_topics(settings: Settings) -> list[str]:
    return [
        settings.events_topic,
        settings.events_dlq_topic,
        settings.commands_topic,
        settings.command_results_topic,
        settings.commands_dlq_topic,
        settings.checkpoints_topic,
    ]


def _configs_for(settings: Settings, topic: str) -> dict[str, str]:
    if topic in (settings.events_topic, settings.checkpoints_topic):
        # The event topic is a replayable log (rebuilds start at offset 0), and the
        # checkpoints are the ledger's evidence kept outside the database: keep them all.
        return {"retention.ms": "-1", "retention.bytes": "-1"}
    return {}


def _partitions_for(settings: Settings, topic: str) -> int:
    # One partition: checkpoints are read back in the order they were signed.
    return 1 if topic == settings.checkpoints_topic else settings.topic_partitions


def ensure_topics(settings: Settings, log: Any, topics: list[str] | None = None) -> list[str]:
    """Create missing topics with the configured partitions and replication; returns
    the names created. Safe to run from several processes at once."""
    wanted = topics or ledger_topics(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=15000)
    try:
        missing = [t for t in wanted if t not in set(admin.list_topics())]
        created = []
        for topic in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            topic,
                            num_partitions=_partitions_for(settings, topic),
                            replication_factor=settings.topic_replication,
                            topic_configs=_configs_for(settings, topic),
                        )
                    ]
                )
                created.append(topic)
                log.info(
                    "topic created",
                    topic=topic,
                    partitions=_partitions_for(settings, topic),
                    replication=settings.topic_replication,
                )
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
