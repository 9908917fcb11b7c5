"""The relay resumes within a couple of seconds of the broker's return.

The broker is shared, so it is never stopped here: the relay reaches it through a
TCP proxy of our own, and "the broker is down" means the proxy refuses connections
and has dropped the open ones. Kafka clients connect to the address the broker
advertises, not the bootstrap address, so the proxy rewrites that address in the
broker's responses (Metadata, FindCoordinator) to its own; every byte the relay
exchanges with the broker then passes through it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kafka import KafkaAdminClient

from commands.models import OnboardPartner
from domain.clock import ManualClock
from infra.bootstrap import build_ledger
from infra.kafka.admin import ensure_topics
from infra.kafka.relay import Relay
from infra.logging import get_logger
from infra.settings import Settings
from tests.integration.flow import drop_schema, isolated_settings, wait_until
from tests.support.actors import MANAGER
from tests.support.driver import Driver

LOG = get_logger("test")
OUTAGE_SECONDS = 30.0
# The relay must publish again this soon after the broker is back (measured: about
# 1 s; before the fix 15 s and more, as its reconnect back-off had grown to 30 s).
RESUME_BOUND_SECONDS = 6.0


def _address(host: str, port: int) -> list[bytes]:
    """`host` then `port` as the broker encodes them: a STRING (int16 length) in
    classic response versions, a COMPACT_STRING (unsigned varint length + 1) in
    flexible ones; short hosts only, which is all a test broker advertises."""
    name = host.encode()
    assert len(name) < 127
    return [
        struct.pack(">h", len(name)) + name + struct.pack(">i", port),
        bytes([len(name) + 1]) + name + struct.pack(">i", port),
    ]


class BrokerProxy:
    """127.0.0.1:<port> -> one broker, with the broker's address rewritten to ours."""

    def __init__(self, broker_host: str, broker_port: int) -> None:
        self.broker = (broker_host, broker_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.rewrites = list(
            zip(_address(broker_host, broker_port), _address("127.0.0.1", self.port), strict=True)
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def up(self) -> None:
        self._call(self._listen())

    def down(self) -> None:
        """Refuse new connections and drop the open ones, as a stopped broker would."""
        self._call(self._close())

    def shut(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _listen(self) -> None:
        for _ in range(50):  # the port may linger a moment after a close
            try:
                self.server = await asyncio.start_server(
                    self._serve, "127.0.0.1", self.port, reuse_address=True
                )
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"cannot listen on 127.0.0.1:{self.port} again")

    async def _close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.broker)
        except OSError:
            client_w.transport.abort()
            return
        self.writers |= {client_w, broker_w}
        await asyncio.gather(
            self._requests(client_r, broker_w),
            self._responses(broker_r, client_w),
            return_exceptions=True,
        )
        for writer in (client_w, broker_w):
            writer.transport.abort()
            self.writers.discard(writer)

    async def _requests(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
        sink.transport.abort()

    async def _responses(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Frame by frame (int32 size, then the body), so an address is never split."""
        while True:
            size = struct.unpack(">i", await source.readexactly(4))[0]
            body = await source.readexactly(size)
            for old, new in self.rewrites:
                body = body.replace(old, new)
            sink.write(struct.pack(">i", len(body)) + body)
            await sink.drain()


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = isolated_settings(database_url, kafka_bootstrap, topic_partitions=1)
    ensure_topics(settings, LOG)
    yield settings
    drop_schema(settings)


@pytest.fixture
def proxy(kafka_bootstrap: str) -> Iterator[BrokerProxy]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        brokers = admin.describe_cluster()["brokers"]
    finally:
        admin.close()
    assert len(brokers) == 1, "the proxy stands in for a single broker"
    proxy = BrokerProxy(str(brokers[0]["host"]), int(brokers[0]["port"]))
    proxy.up()
    yield proxy
    proxy.shut()


def test_the_relay_publishes_again_within_seconds_of_the_brokers_return(
    settings: Settings, proxy: BrokerProxy
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    ledger = build_ledger(settings, clock=clock)
    through_proxy = settings.model_copy(update={"kafka_bootstrap": proxy.bootstrap})
    relay = Relay(build_ledger(settings), through_proxy, get_logger("relay"))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    status = Relay(ledger, settings, LOG)

    drive = Driver(ledger)

    def onboard(code: str) -> None:
        drive.run(OnboardPartner, MANAGER, partner_code=code, name=code)

    thread.start()
    try:
        onboard("before")
        wait_until("the relay to publish through the proxy", lambda: status.status().lag == 0, 60)

        proxy.down()
        outage_started = time.monotonic()
        onboard("during")
        stored = ledger.recorder.max_notification_id() or 0
        time.sleep(OUTAGE_SECONDS)
        assert status.status().published < stored, "the relay published during the outage"

        proxy.up()
        back = time.monotonic()
        wait_until("the relay to publish after the outage", lambda: status.status().lag == 0, 90)
        resumed_after = time.monotonic() - back
    finally:
        stop.set()
        thread.join(30)
        status.close()
    LOG.info(
        "relay resumed",
        outage_s=round(back - outage_started, 1),
        resumed_after_s=round(resumed_after, 2),
    )
    print(f"relay resumed {resumed_after:.2f}s after the broker's return")
    assert resumed_after < RESUME_BOUND_SECONDS
