"""The relay: every stored event reaches Kafka, in per-aggregate order, at least once.

It reads the ledger's notification log after the last published position, sends
each event keyed by aggregate id with CloudEvents headers, waits for the broker's
acknowledgement of the whole batch (acks=all, idempotent producer), and only then
records the new position in PostgreSQL. A crash between the two re-publishes the
batch; it never skips one.

Each stored event is decoded once, straight from its stored JSON into the published
form (projections.contract.encoding.Encoder). When idle the relay sleeps on
PostgreSQL's LISTEN/NOTIFY of the event store (every append notifies), so a new event
is published within milliseconds, not at the next poll.

With the position it records a *mark*: the highest offset it has written to every
partition so far. A reader that wants every event up to position P applied (the
API's `?min_position=`) compares the first mark at or after P with the projector's
stored offsets (infra.store.positions.kafka_applied_through).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner import DefaultPartitioner, Partitioner
from kafka.partitioner.default import murmur2

from commands.ledger import DealLedger
from infra.audit import signed
from infra.kafka.admin import ensure_topics
from infra.reconnect import RETRY_DELAY_MAX_S, run_until_stopped
from infra.settings import Settings
from infra.store.notify import channel_of, listen, wait_for_notify
from infra.store.positions import (
    ensure_position_tables,
    last_mark,
    published_position,
    record_published,
)
from projections.contract.encoding import Encoder

RELAY_NAME = "events"
# Stored events read (and sent) at a time.
PAGE = 5000
# Pages sent before the relay waits for the oldest one's acknowledgement: enough that
# the producer always has the next page while the broker acknowledges the last.
PAGES_IN_FLIGHT = 3

# A broker that stops answering surfaces as a delivery error within seconds: the
# producer gives up on a record after DELIVERY_TIMEOUT_MS, the relay waits for a page's
# acknowledgement just longer than that, and then sends it again (at least once;
# consumers dedupe).
REQUEST_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 10_000
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 2
# Reconnect attempts back off to at most one second, and so do the relay's retries
# (infra/reconnect.py): with the client's default ceiling (30 s) the relay noticed a
# returned broker up to half a minute late.
RECONNECT_BACKOFF_MAX_MS = int(RETRY_DELAY_MAX_S * 1000)


class KeyHashPartitioner(Partitioner):  # type: ignore[misc]
    """The default partitioner (murmur2 of the key, as Java clients hash it), with each
    key's hash remembered: kafka-python computes murmur2 in pure Python, and the relay
    sends an aggregate's events, all with one key, again and again."""

    def __init__(self) -> None:
        self._default = DefaultPartitioner()
        self._hash = lru_cache(maxsize=65_536)(_positive_murmur2)

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: Any,
        cluster: Any,
    ) -> int:
        if serialized_key is None or topic not in cluster.topics():
            return int(
                self._default.partition(
                    topic, key, serialized_key, value, serialized_value, cluster
                )
            )
        partitions = sorted(cluster.partitions_for_topic(topic))
        return int(partitions[self._hash(serialized_key) % len(partitions)])


def _positive_murmur2(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def producer_settings(settings: Settings) -> dict[str, Any]:
    """The relay's producer configuration.

    Batching: the relay keeps a few pages in flight, so a linger only delays the last
    partial batch; 2 ms lets a burst share requests while a lone event still goes out
    at once. Batches of 256 KiB hold a page's events per partition. No compression:
    the messages are small JSON on loopback or a LAN, where compressing costs the
    relay more CPU than it saves in bytes. Idempotent with acks=all, so a retried
    request never duplicates or reorders an aggregate's events."""
    return dict(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_in_flight_requests_per_connection=5,
        linger_ms=2,
        batch_size=256 * 1024,
        retries=2**31 - 1,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
        max_block_ms=DELIVERY_TIMEOUT_MS,
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )


def make_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(**producer_settings(settings), partitioner=KeyHashPartitioner())


@dataclass(frozen=True)
class RelayStatus:
    head: int  # highest position stored in the ledger
    published: int  # highest position acknowledged by Kafka and recorded

    @property
    def lag(self) -> int:
        return max(0, self.head - self.published)


class Relay:
    def __init__(
        self,
        ledger: DealLedger,
        settings: Settings,
        log: Any,
        *,
        batch_size: int = PAGE,
        relay_name: str = RELAY_NAME,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.log = log
        self.batch_size = batch_size
        self.relay_name = relay_name
        self.conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
        # Its position is recorded without waiting for a disk flush: a database crash
        # that loses the last records makes the relay send those events again, which
        # at-least-once delivery allows and consumers skip by aggregate version.
        # Meanwhile the next events wait on no flush.
        self.conn.execute("SET synchronous_commit = off")
        ensure_position_tables(self.conn)
        self.encoder = Encoder(ledger.mapper)
        self._producer: KafkaProducer | None = None
        # Pages sent and not yet recorded: (first position, last position, futures).
        self._in_flight: deque[tuple[int, int, list[Any]]] = deque()
        self._sent_through: int | None = None  # the last position sent
        self._offsets: dict[int, int] | None = None  # highest offset written, per partition
        self._listening = False
        # Run after each batch (the checkpoint writer, when a signing key is set).
        self.after_batch: Callable[[], None] | None = None

    def status(self) -> RelayStatus:
        head = self.ledger.recorder.max_notification_id() or 0
        return RelayStatus(head, published_position(self.conn, self.relay_name))

    def _producer_or_connect(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = make_producer(self.settings)
        return self._producer

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=2)
            except Exception as exc:  # a broken producer may fail to close; we replace it
                self.log.debug("closing producer failed", error=repr(exc))
            self._producer = None

    def publish_batch(self) -> int:
        """Sends the next page of events and records whatever pages the broker has
        acknowledged since; returns how many events it sent (0: none were left, and
        then every page sent is acknowledged and recorded before it returns).

        Pages are pipelined: the next one is read and sent while the broker still
        acknowledges the last, and positions are recorded in order as pages complete,
        so the relay never waits idle on a round trip. On any failure the pages in
        flight are forgotten and sending starts again from the recorded position (at
        least once; consumers skip duplicates by aggregate version)."""
        try:
            start = self._sent_through
            if start is None:
                start = published_position(self.conn, self.relay_name)
            notifications = self.ledger.recorder.select_notifications(
                start=start, limit=self.batch_size, inclusive_of_start=False
            )
            if notifications:
                producer = self._producer_or_connect()
                topic = self.settings.events_topic
                futures = []
                for notification in notifications:
                    event = self.encoder.encode(notification)
                    futures.append(
                        producer.send(
                            topic, key=event.key, value=event.value, headers=event.headers
                        )
                    )
                self._in_flight.append((notifications[0].id, notifications[-1].id, futures))
                self._sent_through = notifications[-1].id
            # Wait for the oldest page only when the pipeline is full or nothing is left.
            self._record_acknowledged(
                wait=not notifications or len(self._in_flight) > PAGES_IN_FLIGHT
            )
        except BaseException:
            self._in_flight.clear()
            self._sent_through = None
            raise
        return len(notifications)

    def _record_acknowledged(self, *, wait: bool) -> None:
        """Records, in order, the pages whose every event the broker acknowledged;
        with `wait`, waits for the oldest (and, when nothing new is sent, for all)."""
        while self._in_flight:
            first, last, futures = self._in_flight[0]
            if not wait and not all(future.is_done for future in futures):
                return
            if self._offsets is None:
                self._offsets = last_mark(self.conn, self.relay_name)
            for future in futures:
                written = future.get(timeout=FLUSH_TIMEOUT_S)  # raises the delivery error
                if written.offset > self._offsets.get(written.partition, -1):
                    self._offsets[written.partition] = written.offset
            record_published(self.conn, self.relay_name, last, self._offsets)
            self._in_flight.popleft()
            self.log.info("published", count=len(futures), first=first, last=last)

    def publish_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Sends a signed checkpoint to the checkpoint topic and waits for the broker."""
        value = signed.line(checkpoint).encode("utf-8")
        future = self._producer_or_connect().send(
            self.settings.checkpoints_topic, key=b"checkpoint", value=value
        )
        future.get(timeout=FLUSH_TIMEOUT_S)

    def wait_for_events(self, stop: threading.Event, seconds: float) -> None:
        """Sleeps until the event store notifies an append, `stop` is set, or `seconds`."""
        channel = channel_of(self.ledger.recorder)
        if channel is None:  # not PostgreSQL: poll
            stop.wait(seconds)
            return
        if not self._listening:
            listen(self.conn, channel)
            self._listening = True
        wait_for_notify(self.conn, stop, seconds)

    def run(self, stop: threading.Event, *, idle_sleep: float = 5.0) -> None:
        """Publish until `stop` is set, retrying with capped backoff while Kafka is away."""
        topics_ready = False

        def step() -> None:
            nonlocal topics_ready
            if not topics_ready:
                ensure_topics(self.settings, self.log)
                topics_ready = True
            sent = self.publish_batch()
            if self.after_batch is not None:
                self.after_batch()
            if sent == 0:
                self.wait_for_events(stop, idle_sleep)

        run_until_stopped(step, stop, retry_on=KafkaError, on_retry=self._on_kafka_error)
        self.close()

    def _on_kafka_error(self, exc: BaseException, attempt: int, delay: float) -> None:
        self.log.warning(
            "kafka unavailable; retrying",
            attempt=attempt,
            retry_in_s=round(delay, 2),
            error=repr(exc),
            lag=self._lag_or_none(),
        )
        if not getattr(exc, "retriable", False):
            # A retriable error (connection lost, timed out) is one the producer
            # recovers from by itself, reconnecting within a second; only a
            # fatal one needs a new producer.
            self._drop_producer()

    def _lag_or_none(self) -> int | None:
        try:
            return self.status().lag
        except psycopg.Error:
            return None

    def drain(self, timeout: float = 60.0) -> RelayStatus:
        """Publish until nothing is left (used by tests and `relay --once`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.publish_batch() == 0:
                break
        return self.status()

    def close(self) -> None:
        if self._producer is not None:
            try:  # what the broker has acknowledged is recorded, not sent again
                self._producer.flush(timeout=10)
                self._record_acknowledged(wait=True)
            except (KafkaError, psycopg.Error) as exc:
                self.log.debug("pages in flight left to be sent again", error=repr(exc))
        self._drop_producer()
        self.conn.close()
