"""The ledger-wide Merkle tree and the seal, as the event store keeps them.

Next to each stream's hash chain the store keeps one append-only RFC 6962 Merkle tree
over every sealed event in ledger (notification) order. Leaf k is
`leaf_hash(bytes.fromhex(chain hash))` of the k-th sealed event; the tree table holds
every PERFECT subtree's hash as (level, idx): level 0 the leaves, level L+1 node idx
the node over level L's 2*idx and 2*idx+1. So a root, an inclusion proof or a
consistency proof needs O(log n) rows (infra/audit/proofs.py), and appending a leaf
writes it plus one row per completed subtree (one on average). Each hash row records
its event's leaf index, so a missing event shows as a gap in leaf indices even where
the database's positions legitimately skip numbers (a rolled-back append consumes
sequence values).

The seal row records the ledger position from which every event must have its hash
row and its leaf: where chaining began. It is written once, when a store first gets a
tree; events stored before it (stores older than hash chaining) are reported as such.
What a verifier concludes from all this: infra/audit/verify.py and docs/auditing.md.
"""

from __future__ import annotations

from typing import Any

from psycopg.sql import SQL, Composed, Identifier

from infra.audit.proofs import leaf_hash, node_hash

TREE_SUFFIX = "_tree"
SEAL_SUFFIX = "_seal"
CHECKPOINTS_SUFFIX = "_checkpoints"


def postgres_statements(
    schema: str, events_table: str, hashes_table: str, push_function: str
) -> list[Composed]:
    """Tables, the leaf-push function and the one-time seal (with the tree built over
    the events already hashed), in create-table order."""
    s = Identifier(schema)
    events = SQL("{}.{}").format(s, Identifier(events_table))
    hashes = SQL("{}.{}").format(s, Identifier(hashes_table))
    tree = SQL("{}.{}").format(s, Identifier(events_table + TREE_SUFFIX))
    seal = SQL("{}.{}").format(s, Identifier(events_table + SEAL_SUFFIX))
    checkpoints = SQL("{}.{}").format(s, Identifier(events_table + CHECKPOINTS_SUFFIX))
    push = SQL("{}.{}").format(s, Identifier(push_function))
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {tree} (level smallint NOT NULL, idx bigint NOT NULL, "
            "hash bytea NOT NULL, PRIMARY KEY (level, idx))"
        ).format(tree=tree),
        SQL(
            "CREATE TABLE IF NOT EXISTS {seal} (id boolean PRIMARY KEY DEFAULT true CHECK (id), "
            "sealed_from bigint NOT NULL, sealed_at timestamptz NOT NULL DEFAULT now())"
        ).format(seal=seal),
        SQL(
            "CREATE TABLE IF NOT EXISTS {checkpoints} (tree_size bigint PRIMARY KEY, "
            "body text NOT NULL)"
        ).format(checkpoints=checkpoints),
        # A STRICT read: a missing left sibling (a tampered tree) fails the append
        # rather than growing a tree nobody can prove anything with.
        SQL(
            "CREATE OR REPLACE FUNCTION {push}(k bigint, leaf bytea) RETURNS void "
            "LANGUAGE plpgsql AS $BODY$ "
            "DECLARE h bytea := leaf; l bytea; lvl smallint := 0; j bigint := k; "
            "BEGIN "
            "INSERT INTO {tree} (level, idx, hash) VALUES (0, k, leaf); "
            "WHILE mod(j, 2) = 1 LOOP "
            "SELECT t.hash INTO STRICT l FROM {tree} t WHERE t.level = lvl AND t.idx = j - 1; "
            "h := sha256('\\x01'::bytea || l || h); lvl := lvl + 1; j := j / 2; "
            "INSERT INTO {tree} (level, idx, hash) VALUES (lvl, j, h); "
            "END LOOP; "
            "END; $BODY$"
        ).format(push=push, tree=tree),
        # Once per store: seal from the first hashed event and build the tree over the
        # events hashed so far. Never again: a store whose seal row is gone while its
        # tree remains is left as it is, for `verify` to report.
        SQL(
            "DO $BODY$ DECLARE k bigint := 0; r record; s bigint; BEGIN "
            "IF NOT EXISTS (SELECT 1 FROM {seal}) AND NOT EXISTS (SELECT 1 FROM {tree}) THEN "
            "LOCK TABLE {events} IN EXCLUSIVE MODE; "
            "IF NOT EXISTS (SELECT 1 FROM {seal}) AND NOT EXISTS (SELECT 1 FROM {tree}) THEN "
            "SELECT min(e.notification_id) INTO s FROM {events} e JOIN {hashes} h "
            "ON h.originator_id = e.originator_id AND h.originator_version = e.originator_version; "
            "IF s IS NULL THEN "
            "SELECT coalesce(max(e.notification_id), 0) + 1 INTO s FROM {events} e; "
            "END IF; "
            "FOR r IN SELECT e.originator_id, e.originator_version, h.hash FROM {events} e "
            "JOIN {hashes} h ON h.originator_id = e.originator_id "
            "AND h.originator_version = e.originator_version "
            "WHERE e.notification_id >= s ORDER BY e.notification_id LOOP "
            "PERFORM {push}(k, sha256('\\x00'::bytea || decode(r.hash, 'hex'))); "
            "UPDATE {hashes} SET leaf = k WHERE originator_id = r.originator_id "
            "AND originator_version = r.originator_version; "
            "k := k + 1; "
            "END LOOP; "
            "INSERT INTO {seal} (sealed_from) VALUES (s); "
            "END IF; END IF; END $BODY$"
        ).format(seal=seal, tree=tree, events=events, hashes=hashes, push=push),
    ]


def sqlite_create_statements(events_table: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {events_table}{TREE_SUFFIX} (level INTEGER NOT NULL, "
        "idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
        f"CREATE TABLE IF NOT EXISTS {events_table}{SEAL_SUFFIX} ("
        "id INTEGER PRIMARY KEY CHECK (id = 1), sealed_from INTEGER NOT NULL, "
        "sealed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        f"CREATE TABLE IF NOT EXISTS {events_table}{CHECKPOINTS_SUFFIX} ("
        "tree_size INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    ]


def sqlite_next_leaf(c: Any, events_table: str) -> int:
    c.execute(f"SELECT coalesce(max(idx) + 1, 0) FROM {events_table}{TREE_SUFFIX} WHERE level = 0")
    return int(c.fetchone()[0])


def sqlite_push(c: Any, events_table: str, k: int, chain_hash: str) -> None:
    """Appends leaf k (the event with this chain hash) and every subtree it completes,
    as the PostgreSQL push function does."""
    table = events_table + TREE_SUFFIX
    h = leaf_hash(bytes.fromhex(chain_hash))
    c.execute(f"INSERT INTO {table} (level, idx, hash) VALUES (0, ?, ?)", (k, h))
    level, j = 0, k
    while j % 2 == 1:
        c.execute(f"SELECT hash FROM {table} WHERE level = ? AND idx = ?", (level, j - 1))
        row = c.fetchone()
        if row is None:
            raise RuntimeError(f"the ledger tree lacks node ({level}, {j - 1}): it was altered")
        h = node_hash(bytes(row[0]), h)
        level, j = level + 1, j // 2
        c.execute(f"INSERT INTO {table} (level, idx, hash) VALUES (?, ?, ?)", (level, j, h))


def sqlite_seal(c: Any, events_table: str, hashes_table: str) -> None:
    """The one-time seal of `postgres_statements`, on SQLite (inside the create-table
    transaction, which holds the database's write lock)."""
    seal, tree = events_table + SEAL_SUFFIX, events_table + TREE_SUFFIX
    c.execute(
        f"SELECT (SELECT count(*) FROM {seal}), "
        f"(SELECT count(*) FROM (SELECT 1 FROM {tree} LIMIT 1))"
    )
    sealed, grown = c.fetchone()
    if sealed or grown:
        return
    join = (
        f"FROM {events_table} e JOIN {hashes_table} h ON h.originator_id = e.originator_id "
        "AND h.originator_version = e.originator_version"
    )
    c.execute(f"SELECT min(e.rowid) {join}")
    start = c.fetchone()[0]
    if start is None:
        c.execute(f"SELECT coalesce(max(rowid), 0) + 1 FROM {events_table}")
        start = c.fetchone()[0]
    c.execute(
        f"SELECT e.originator_id, e.originator_version, h.hash {join} "
        "WHERE e.rowid >= ? ORDER BY e.rowid",
        (start,),
    )
    for k, (originator_id, version, digest) in enumerate(c.fetchall()):
        sqlite_push(c, events_table, k, digest)
        c.execute(
            f"UPDATE {hashes_table} SET leaf = ? "
            "WHERE originator_id = ? AND originator_version = ?",
            (k, originator_id, version),
        )
    c.execute(f"INSERT INTO {seal} (id, sealed_from) VALUES (1, ?)", (int(start),))
