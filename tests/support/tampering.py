"""An attacker with write access to the event store, on either database.

`RawStore` runs SQL straight against the store's tables (the application is not
involved) and can rewrite the whole history consistently: every chain hash, leaf and
tree node recomputed as the recorder would, so that only what lives outside the
database (the signed checkpoints) can tell.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from infra.audit import proofs
from infra.audit.bundle_check import GENESIS, SCHEME, event_hash
from infra.settings import Settings


@dataclass
class Row:
    position: int
    stream: UUID
    version: int
    topic: str
    state: bytes


class RawStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = settings.uses_postgres
        if self.postgres:
            schema = settings.database_schema
            self.events = f"{schema}.dealledger_events"
            self.position = "notification_id"
        else:
            self.events = "stored_events"
            self.position = "rowid"
        self.hashes = self.events + "_hashes"
        self.tree = self.events + "_tree"
        self.seal = self.events + "_seal"

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.postgres:
            with psycopg.connect(self.settings.database_url or "") as conn, conn.cursor() as cur:
                yield cur
        else:
            lite = sqlite3.connect(self.settings.sqlite_path)
            try:
                with lite:
                    yield lite.cursor()
            finally:
                lite.close()

    def run(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """`{events}`, `{hashes}`, `{tree}`, `{seal}` and `{pos}` name the store's own."""
        sql = sql.format(
            events=self.events, hashes=self.hashes, tree=self.tree, seal=self.seal,
            pos=self.position,
        )  # fmt: skip
        if not self.postgres:
            sql = sql.replace("%s", "?")
        with self._cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def sid(self, stream: UUID) -> Any:
        return stream if self.postgres else stream.hex

    def rows(self) -> list[Row]:
        return [
            Row(int(p), UUID(str(i)), int(v), str(t), bytes(s))
            for p, i, v, t, s in self.run(
                "SELECT {pos}, originator_id, originator_version, topic, state "
                "FROM {events} ORDER BY {pos}"
            )
        ]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return {
            "events": self.run(
                "SELECT {pos}, originator_id, originator_version, topic, state FROM {events}"
            ),
            "hashes": self.run(
                "SELECT originator_id, originator_version, prev_hash, hash, scheme, leaf "
                "FROM {hashes}"
            ),
            "tree": self.run("SELECT level, idx, hash FROM {tree}"),
        }

    def restore(self, snapshot: dict[str, list[tuple[Any, ...]]]) -> None:
        """Puts the three tables back exactly as they were (a restored backup)."""
        for table in ("tree", "hashes", "events"):
            self.run(f"DELETE FROM {{{table}}}")
        for row in snapshot["events"]:
            self.run(
                "INSERT INTO {events} "
                "({pos}, originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s, %s)",
                *row,
            )
        for row in snapshot["hashes"]:
            self.run(
                "INSERT INTO {hashes} (originator_id, originator_version, prev_hash, hash, "
                "scheme, leaf) VALUES (%s, %s, %s, %s, %s, %s)",
                *row,
            )
        for row in snapshot["tree"]:
            self.run("INSERT INTO {tree} (level, idx, hash) VALUES (%s, %s, %s)", *row)

    def rewrite(self, change: Callable[[list[Row]], list[Row]]) -> None:
        """Replaces the history with `change(rows)`, every hash, leaf and node recomputed
        exactly as the recorder computes them: consistent in every way the database
        can show, and signed by nobody."""
        rows = change(self.rows())
        for table in ("tree", "hashes", "events"):
            self.run(f"DELETE FROM {{{table}}}")
        heads: dict[UUID, str] = {}
        leaves: list[bytes] = []
        for row in sorted(rows, key=lambda r: r.position):
            prev = heads.get(row.stream, GENESIS)
            digest = event_hash(
                SCHEME, prev, str(row.stream), row.version, row.position, row.topic, row.state
            )
            heads[row.stream] = digest
            self.run(
                "INSERT INTO {events} ({pos}, originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s, %s)",
                row.position, self.sid(row.stream), row.version, row.topic, row.state,
            )  # fmt: skip
            self.run(
                "INSERT INTO {hashes} (originator_id, originator_version, prev_hash, hash, "
                "scheme, leaf) VALUES (%s, %s, %s, %s, %s, %s)",
                self.sid(row.stream), row.version, prev, digest, SCHEME, len(leaves),
            )  # fmt: skip
            leaves.append(proofs.leaf_hash(bytes.fromhex(digest)))
        level, nodes = 0, leaves
        while nodes:
            for idx, node in enumerate(nodes):
                self.run("INSERT INTO {tree} (level, idx, hash) VALUES (%s, %s, %s)", level, idx,
                         node)  # fmt: skip
            nodes = [proofs.node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
            level += 1
