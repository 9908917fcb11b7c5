"""The composition root: every Deal Ledger process is wired here, from `Settings`.

`Wiring(settings)` builds, on first use and once, what an entry point asks for: the
ledger (the write side), the read-model and key databases, the API-key store and
authenticator, the command gateway, the relay, the projector host, the command
consumer and the HTTP app.
The API, the CLI, the consumers, the demo and the tests all get their parts here, so
a part is configured in exactly one place. Nothing connects to a server at import,
nor when `Wiring` is made: only when a part is first asked for.

Builders import their part's modules inside the method, on purpose: a process then
loads only what it runs (the relay never imports the web framework, the projector
never imports the API), which keeps start-up quick and resident memory small.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from commands.ledger import DealLedger
from commands.unit_of_work import LedgerPolicy
from domain.clock import Clock, SystemClock
from infra.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from consumers.command_consumer import CommandConsumer
    from consumers.projector_host import ProjectorHost
    from infra.audit.checkpoints import CheckpointWriter
    from infra.gateway.gateway import CommandMetrics, Gateway
    from infra.gateway.key_store import KeyStore
    from infra.gateway.principals import Authenticator
    from infra.http.read_models import ReadFeed
    from infra.kafka.relay import Relay
    from infra.store.databases import Database


class StoreMissing(Exception):
    """An embedded store was expected where there is none (or not a ledger's)."""


def ledger_policy(settings: Settings) -> LedgerPolicy:
    return LedgerPolicy(
        protection_days=settings.protection_days,
        max_extensions=settings.max_extensions,
        auto_approve_limits=dict(settings.auto_approve_limits),
    )


def build_ledger(settings: Settings, clock: Clock | None = None) -> DealLedger:
    """The write-side application on PostgreSQL, or on embedded SQLite without a URL.

    On PostgreSQL the library creates its tables on start-up; processes starting
    together against a fresh database would race on that DDL, so it is serialised
    with an advisory lock."""

    def construct() -> DealLedger:
        return DealLedger(
            env=settings.eventsourcing_env(),
            clock=clock,
            policy=ledger_policy(settings),
            snapshot_interval=settings.snapshot_interval,
        )

    if not settings.uses_postgres:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return construct()
    import psycopg

    from infra.store.ddl import serialised_ddl

    with (
        psycopg.connect(settings.psycopg_conninfo(), autocommit=True) as conn,
        serialised_ddl(conn),
    ):
        return construct()


def require_embedded_store(settings: Settings, *, events: bool = True) -> None:
    """Raises StoreMissing unless the embedded store exists (PostgreSQL: always fine).

    Commands that only read must not create a store where none is; with `events`
    the file must also hold the event tables, not just API keys."""
    if settings.uses_postgres:
        return
    path = settings.sqlite_path
    hint = "set DEALLEDGER_SQLITE_PATH to your store (`dealledger serve` creates one)"
    if not path.is_file():
        raise StoreMissing(f"no event store at {path}: {hint}")
    if not events:
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            found = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                ("stored_events",),
            ).fetchone()[0]
    except sqlite3.DatabaseError:
        found = 0
    if not found:
        raise StoreMissing(f"{path} is not a Deal Ledger event store: {hint}")


class Wiring:
    """The parts of one process, each built on first use from `settings`.

    `ledger` may be given (tests, the demo); then it is used and not closed here.
    Parts are built once and shared; `close()` closes what was built.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        ledger: DealLedger | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or (ledger.clock if ledger is not None else SystemClock())
        self._ledger = ledger
        self._owns_ledger = ledger is None
        self._lock = threading.RLock()
        self._parts: dict[str, Any] = {}

    def _once(self, name: str, build: Any) -> Any:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = build()
            return self._parts[name]

    # -- the write side --------------------------------------------------------------

    def ledger(self) -> DealLedger:
        """The ledger, built on first use (and built again after a failed attempt)."""
        with self._lock:
            if self._ledger is None:
                self._ledger = build_ledger(self.settings, clock=self.clock)
            return self._ledger

    def new_ledger(self) -> DealLedger:
        """A ledger of its own (for a thread or process that must not share one);
        the caller closes it."""
        return build_ledger(self.settings, clock=self.clock)

    # -- databases beside the event store --------------------------------------------

    def read_database(self) -> Database:
        """The read models' database: the PostgreSQL schema, or the embedded SQLite
        file beside the event store."""

        def build() -> Database:
            from infra.store.databases import SqliteDatabase, read_model_path

            if self.settings.uses_postgres:
                return self._postgres_pool()
            return SqliteDatabase(read_model_path(self.settings.sqlite_path), wal=True)

        database: Database = self._once("read_database", build)
        return database

    def feed_database(self) -> Database:
        """Where a background feed writes the read models: on SQLite a connection of its
        own (queries go on reading while it writes), on PostgreSQL the shared pool."""

        def build() -> Database:
            from infra.store.databases import SqliteDatabase, read_model_path

            if self.settings.uses_postgres:
                return self._postgres_pool()
            return SqliteDatabase(read_model_path(self.settings.sqlite_path), wal=True)

        database: Database = self._once("feed_database", build)
        return database

    def key_database(self) -> Database:
        """Where API keys live: the PostgreSQL schema, or the embedded event store file."""

        def build() -> Database:
            from infra.store.databases import SqliteDatabase

            if self.settings.uses_postgres:
                return self._postgres_pool()
            return SqliteDatabase(self.settings.sqlite_path)

        database: Database = self._once("key_database", build)
        return database

    def _postgres_pool(self) -> Database:
        def build() -> Database:
            from infra.store.databases import PostgresDatabase

            return PostgresDatabase(
                self.settings.psycopg_conninfo(), max_size=self.settings.postgres_pool_size
            )

        database: Database = self._once("postgres_pool", build)
        return database

    # -- principals ------------------------------------------------------------------

    def key_store(self) -> KeyStore:
        def build() -> KeyStore:
            from infra.gateway.key_store import KeyStore

            return KeyStore(self.key_database())

        store: KeyStore = self._once("key_store", build)
        return store

    def authenticator(self) -> Authenticator:
        def build() -> Authenticator:
            from infra.gateway.key_store import bootstrap_keys
            from infra.gateway.principals import Authenticator

            return Authenticator(
                self.key_store(), bootstrap_keys(self.settings.api_keys, datetime.now(UTC))
            )

        authenticator: Authenticator = self._once("authenticator", build)
        return authenticator

    def gateway(self, *, metrics: CommandMetrics | None = None) -> Gateway:
        """The command gateway on this process's ledger and keys (cheap: one per edge,
        each with its own metrics)."""
        from infra.gateway.gateway import Gateway

        return Gateway(self.ledger, self.authenticator(), metrics=metrics)

    # -- the read side -----------------------------------------------------------------

    def read_feed(self) -> ReadFeed:
        """A feed of the read models from the ledger in a background thread (the
        embedded and inline modes): the one place the API reaches the read-side
        engine. On PostgreSQL it wakes on the event store's NOTIFY of every append;
        on SQLite on the API's own writes and a short poll."""
        from consumers.embedded_feed import Follower
        from infra.logging import get_logger
        from infra.store.notify import channel_of, follow_appends

        log = get_logger("read-model-feed")
        inline = self.settings.uses_postgres

        def listen(stop: threading.Event, seconds: float) -> None:
            channel = channel_of(self.ledger().recorder)
            if channel is not None:
                conninfo = self.settings.psycopg_conninfo()
                follow_appends(conninfo, channel, follower.wake, stop, seconds, log)

        follower = Follower(
            self.ledger,
            self.feed_database().reading,
            log,
            name="api-inline" if inline else "embedded",
            poll_seconds=2.0 if inline else 0.25,
            listen=listen if inline else None,
            # Without Kafka no relay runs: the feed signs the checkpoints.
            after_catch_up=self._checkpoints_when_due(log),
        )
        return follower

    # -- signed checkpoints ------------------------------------------------------------

    def checkpoint_writer(
        self, publish: Callable[[dict[str, Any]], None] | None = None
    ) -> CheckpointWriter | None:
        """The checkpoint writer on the operator's signing key; None without a key (a
        key that cannot be read raises checkpoints.KeyProblem)."""
        from infra.audit.checkpoints import CheckpointWriter, signing_key
        from infra.audit.store import AuditStore

        key = signing_key(self.settings)
        if key is None:
            return None
        return CheckpointWriter(AuditStore(self.ledger()), key, self.settings, publish=publish)

    def _checkpoints_when_due(self, log: Any) -> Callable[[], None] | None:
        """A step that signs a checkpoint when one is due, for a loop that follows the
        ledger (the relay, the embedded feed); None when no key is configured. A tree
        that no longer extends the last checkpoint is logged, never signed."""
        from infra.audit.checkpoints import TreeAltered

        writer = self.checkpoint_writer()
        if writer is None:
            log.warning(
                "no signing key: no checkpoints are written "
                "(set DEALLEDGER_SIGNING_KEY_FILE; see docs/auditing.md)"
            )
            return None
        armed = writer

        def step() -> None:
            try:
                written = armed.write_if_due()
            except TreeAltered as exc:
                armed.postpone()
                log.error("checkpoint refused", reason=str(exc))
                return
            except Exception as exc:  # the file, the database or the broker: try later
                # The loop this runs in (relaying, feeding) goes on either way.
                armed.postpone()
                log.error("checkpoint failed; retrying later", error=repr(exc))
                return
            if written is not None:
                log.info("checkpoint signed", tree_size=written["tree_size"], root=written["root"])

        self._parts["checkpoint_writer"] = writer
        return step

    # -- processes -------------------------------------------------------------------

    def relay(self, *, batch_size: int | None = None) -> Relay:
        from infra.kafka.relay import Relay
        from infra.logging import get_logger

        log = get_logger("relay")
        relay = Relay(self.ledger(), self.settings, log)
        step = self._checkpoints_when_due(log)
        if step is not None:
            writer = self._parts["checkpoint_writer"]
            writer.publish = relay.publish_checkpoint
            relay.after_batch = step
        if batch_size is not None:
            relay.batch_size = batch_size
        self._parts.setdefault("relays", []).append(relay)
        return relay

    def projector(self) -> ProjectorHost:
        from consumers.projector_host import ProjectorHost
        from infra.logging import get_logger

        host = ProjectorHost(self.settings, get_logger("projector"))
        self._parts.setdefault("projectors", []).append(host)
        return host

    def command_consumer(self, *, trust_key_ids: bool = False) -> CommandConsumer:
        from consumers.command_consumer import CommandConsumer
        from infra.logging import get_logger

        self.ledger()  # built now: a consumer with no database fails at start, not later
        return CommandConsumer(
            self.settings,
            self.gateway(),
            get_logger("command-consumer"),
            trust_key_ids=trust_key_ids,
        )

    def http_app(self) -> FastAPI:
        from infra.http.app import create_app

        return create_app(self)

    # -- the end -----------------------------------------------------------------------

    def close(self) -> None:
        """Closes every part built here (a given ledger stays open)."""
        with self._lock:
            parts, self._parts = self._parts, {}
            for relay in parts.pop("relays", []):
                relay.close()
            for host in parts.pop("projectors", []):
                host.close()
            for name in ("read_database", "feed_database", "key_database", "postgres_pool"):
                database = parts.pop(name, None)
                if database is not None:
                    database.close()
            if self._owns_ledger and self._ledger is not None:
                self._ledger.close()
                self._ledger = None
