"""Scenarios 1 and 2: command throughput through `DealLedger.execute` on PostgreSQL.

1. One client: submit-and-approve style commands (a submission that is approved at
   once, one that goes to review, and the manager's approval of it) vs a raw psycopg
   single-row INSERT per transaction into a table shaped like the event store's.
2. Eight clients (threads sharing one DealLedger, as an API process's workers do, so
   their saves share group commits) racing for a shared pool of conflict keys vs one
   client running the same workload; at the end the benchmark
   checks that at most one approved, unexpired protection exists per conflict key and
   that every command was either accepted or refused with a documented DomainError.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from commands.ledger import DealLedger
from commands.models import (
    ApproveRegistration,
    CustomerIn,
    MoneyIn,
    OnboardPartner,
    SubmitRegistration,
)
from domain.errors import DomainError
from domain.ids import protection_id
from domain.registration import RegistrationStatus
from infra.bootstrap import build_ledger
from tests.benchmarks.bench_common import (
    Bench,
    Deadline,
    Figure,
    Scale,
    events_table,
    repeat,
    say,
)
from tests.support import actors
from tests.support.actors import as_command_actor

MANAGER = as_command_actor(actors.MANAGER)
CLOSE = date(2030, 1, 1)
SMALL = Decimal("120000")  # within the USD auto-approval limit
LARGE = Decimal("900000")  # above it: the registration goes to review

# The refusals the README documents (domain.errors); anything else is a bug.
DOCUMENTED_CODES = frozenset(
    {
        "invalid_input",
        "not_found",
        "illegal_transition",
        "channel_conflict",
        "partner_suspended",
        "protected_partner",
        "invalid_attribution",
        "forbidden",
        "idempotency_key_reused",
        "concurrent_modification",
    }
)


def onboard(ledger: DealLedger, codes: list[str]) -> None:
    for code in codes:
        ledger.execute(
            OnboardPartner(
                command_id=f"onboard-{code}", actor=MANAGER, partner_code=code, name=code
            )
        )


def submission(command_id: str, partner: str, domain: str, amount: Decimal) -> SubmitRegistration:
    return SubmitRegistration(
        command_id=command_id,
        actor=as_command_actor(actors.partner(partner)),
        partner_code=partner,
        customer=CustomerIn(name=domain.split(".")[0].title(), domain=domain, country="DE"),
        product_line="cloud",
        estimated_value=MoneyIn(amount=amount, currency="USD"),
        expected_close=CLOSE,
    )


def approval(command_id: str, registration_id: UUID) -> ApproveRegistration:
    return ApproveRegistration(
        command_id=command_id, actor=MANAGER, registration_id=registration_id
    )


# -- scenario 1 -------------------------------------------------------------------------


def one_client(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s1")
    ledger = build_ledger(settings)
    partners = [f"p{i}" for i in range(4)]
    onboard(ledger, partners)
    conninfo = settings.psycopg_conninfo()
    payload_size = [0]

    def commands(rep: int) -> float:
        count = scale.commands if rep else max(30, scale.commands // 5)
        deadline = Deadline(300, "one-client commands")
        sent = 0
        start = time.perf_counter()
        i = 0
        while sent < count and not deadline.passed:
            partner = partners[i % len(partners)]
            ledger.execute(submission(f"s1-{rep}-{i}-a", partner, f"r{rep}a{i}.example", SMALL))
            review = ledger.execute(
                submission(f"s1-{rep}-{i}-b", partner, f"r{rep}b{i}.example", LARGE)
            )
            if review.aggregate_id is None:
                raise AssertionError("a submission returned no registration id")
            ledger.execute(approval(f"s1-{rep}-{i}-c", review.aggregate_id))
            sent += 3
            i += 1
        return sent / (time.perf_counter() - start)

    def raw_inserts(rep: int) -> float:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            if not payload_size[0]:
                # Rows as large as the events the ledger stored in the warm-up.
                size = conn.execute(f"SELECT avg(length(state)) FROM {events_table(ledger)}")
                row = size.fetchone()
                payload_size[0] = int(row[0]) if row and row[0] else 500
                conn.execute(
                    "CREATE TABLE raw_events (originator_id uuid NOT NULL, "
                    "originator_version bigint NOT NULL, topic text NOT NULL, "
                    "state bytea NOT NULL, PRIMARY KEY (originator_id, originator_version))"
                )
            payload = b"x" * payload_size[0]
            count = scale.raw_inserts if rep else max(100, scale.raw_inserts // 5)
            deadline = Deadline(120, "raw inserts")
            done = 0
            start = time.perf_counter()
            while done < count and not deadline.passed:
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO raw_events VALUES (%s, %s, %s, %s)",
                        (uuid.uuid4(), 1, "bench.RawEvent", payload),
                    )
                done += 1
            return done / (time.perf_counter() - start)

    try:
        rates, raw = repeat(scale.reps, commands, raw_inserts, label="1 one-client commands")
    finally:
        ledger.close()
    return [
        Figure(
            scenario="1",
            name="commands_one_client",
            title="commands/s, one client (DealLedger.execute on PostgreSQL)",
            unit="commands/s",
            higher_is_better=True,
            samples=rates,
            baseline_title="raw psycopg single-row INSERT per transaction",
            baseline_samples=raw,
            params={
                "commands_per_rep": scale.commands,
                "mix": "1/3 submit (auto-approved), 1/3 submit (to review), 1/3 approve",
                "raw_inserts_per_rep": scale.raw_inserts,
                "raw_row_bytes": payload_size[0],
            },
        )
    ]


# -- scenario 2 -------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    undocumented: list[str] = field(default_factory=list)
    registrations: list[UUID] = field(default_factory=list)

    def outcome(self, accepted: bool, code: str | None = None, error: str | None = None) -> None:
        with self.lock:
            self.sent += 1
            if accepted:
                self.accepted += 1
            elif code is not None:
                self.refused[code] += 1
                if code not in DOCUMENTED_CODES:
                    self.undocumented.append(f"undocumented code {code}: {error}")
            else:
                self.undocumented.append(error or "unknown error")


def _client(
    ledger: DealLedger,
    side: str,
    rep: int,
    client: int,
    count: int,
    pool: int,
    tally: Tally,
    start: threading.Barrier,
) -> None:
    """Submits for keys of a pool shared with every other client, and approves some of
    its own registrations that went to review: collisions are the point."""
    rng = random.Random(f"{side}-{rep}-{client}")
    partner = f"c{client}"
    pending: list[UUID] = []
    start.wait(timeout=60)
    deadline = Deadline(300, "concurrent client")
    for i in range(count):
        if deadline.passed:
            break
        command_id = f"s2-{side}-{rep}-{client}-{i}"
        command: Any
        if pending and i % 3 == 2:
            command = approval(command_id, pending.pop(rng.randrange(len(pending))))
        else:
            key = rng.randrange(pool)
            amount = LARGE if rng.random() < 0.25 else SMALL
            command = submission(command_id, partner, f"r{rep}{side}k{key}.example", amount)
        try:
            outcome = ledger.execute(command)
        except DomainError as exc:
            tally.outcome(False, code=exc.code, error=exc.message)
            continue
        except Exception as exc:  # anything but a DomainError breaks the contract
            tally.outcome(False, error=repr(exc))
            continue
        tally.outcome(True)
        if isinstance(command, SubmitRegistration) and outcome.aggregate_id is not None:
            with tally.lock:
                tally.registrations.append(outcome.aggregate_id)
            if outcome.result.get("status") == RegistrationStatus.IN_REVIEW.value:
                pending.append(outcome.aggregate_id)


def _run_clients(
    ledgers: list[DealLedger], side: str, rep: int, per_client: int, tally: Tally
) -> float:
    clients = len(ledgers)
    pool = max(8, per_client * clients // 3)
    barrier = threading.Barrier(clients + 1)
    sent_before = tally.sent
    threads = [
        threading.Thread(
            target=_client,
            args=(ledger, side, rep, n, per_client, pool, tally, barrier),
            name=f"bench-client-{n}",
            daemon=True,
        )
        for n, ledger in enumerate(ledgers)
    ]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    start = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.perf_counter() - start
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError("a benchmark client did not finish within 10 minutes")
    return (tally.sent - sent_before) / elapsed


def check_invariants(ledger: DealLedger, tally: Tally) -> dict[str, Any]:
    """At most one approved, unexpired protection per conflict key (and it is the key's
    protection holder); every command accepted or refused with a documented error."""
    now = datetime.now(UTC)
    approved: dict[str, list[UUID]] = {}
    keys: set[str] = set()
    for registration_id in tally.registrations:
        registration = ledger.get_registration(registration_id)
        keys.add(registration.conflict_key)
        if (
            registration.status is RegistrationStatus.APPROVED
            and registration.protected_until is not None
            and registration.protected_until > now
        ):
            approved.setdefault(registration.conflict_key, []).append(registration_id)
    violations = [
        f"{key}: {len(ids)} approved, unexpired protections"
        for key, ids in approved.items()
        if len(ids) > 1
    ]
    for key, ids in approved.items():
        holder = ledger.get_protection(protection_id(key)).holder
        if holder not in ids:
            violations.append(f"{key}: protection holder {holder} is not the approved {ids}")
    answered = tally.accepted + sum(tally.refused.values()) + len(tally.undocumented)
    if answered != tally.sent:
        violations.append(f"{tally.sent - answered} commands were neither accepted nor refused")
    undocumented = Counter(tally.undocumented)
    return {
        "ok": not violations and not undocumented,
        "one_protection_per_key": not violations,
        "every_error_documented": not undocumented,
        "violations": violations[:20],
        "undocumented_errors": dict(undocumented.most_common(10)),
        "commands": tally.sent,
        "accepted": tally.accepted,
        "refused": dict(sorted(tally.refused.items())),
        "registrations": len(tally.registrations),
        "conflict_keys": len(keys),
        "keys_protected": len(approved),
        "max_approved_unexpired_per_key": max((len(v) for v in approved.values()), default=0),
    }


def concurrent_clients(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s2")
    # One ledger for all the clients, as the workers of one API process share theirs:
    # their saves go through its group commit together.
    ledgers = [build_ledger(settings)] * scale.clients
    onboard(ledgers[0], [f"c{n}" for n in range(scale.clients)])
    tally = Tally()
    single = max(scale.commands_per_client * scale.clients // 2, 1)

    def many(rep: int) -> float:
        per_client = scale.commands_per_client if rep else max(3, scale.commands_per_client // 3)
        return _run_clients(ledgers, "m", rep, per_client, tally)

    def one(rep: int) -> float:
        count = single if rep else max(10, single // 3)
        return _run_clients(ledgers[:1], "o", rep, count, tally)

    try:
        rates, one_rates = repeat(
            scale.reps, many, one, label=f"2 {scale.clients} concurrent clients"
        )
        say("2: checking invariants")
        checks = check_invariants(ledgers[0], tally)
    finally:
        ledgers[0].close()
    if not checks["one_protection_per_key"]:
        say(f"2: INVARIANT VIOLATED: {checks['violations']}")
    if not checks["every_error_documented"]:
        say(f"2: COMMANDS FAILED WITH UNDOCUMENTED ERRORS: {checks['undocumented_errors']}")
    return [
        Figure(
            scenario="2",
            name="commands_concurrent",
            title=f"commands/s, {scale.clients} concurrent clients (threads, one DealLedger)",
            unit="commands/s",
            higher_is_better=True,
            samples=rates,
            baseline_title="one client, same workload",
            baseline_samples=one_rates,
            params={
                "clients": scale.clients,
                "commands_per_client_per_rep": scale.commands_per_client,
                "one_client_commands_per_rep": single,
                "mix": "2/3 submit for a shared key pool (1/4 above the auto-approval limit), "
                "1/3 approve an own registration in review",
                "key_pool": "commands_per_client * clients / 3 keys per repetition",
            },
            checks=checks,
        )
    ]
