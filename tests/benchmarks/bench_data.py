"""Fast builders of benchmark data: domain methods called in memory, saved in batches.

Commands are what scenarios 1, 2 and 6 measure; the other scenarios need many
realistic events quickly, so they call the aggregates' public methods (which validate
exactly as the handlers do) and save the results in large batches.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from commands.ledger import DealLedger
from domain.base import LedgerAggregate
from domain.deal import Deal, LossReason, PartnerRole
from domain.partner import Partner, PartnerTier
from domain.values import Customer, Money
from projections.contract.encoding import cloudevent_headers, message_document, to_bytes
from tests.support import actors
from tests.support.actors import caused_by

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STAGES = ("qualified", "proposal", "negotiation", "committed")
SALES = caused_by(actors.SALES, "bench-bulk")
MANAGER = caused_by(actors.MANAGER, "bench-bulk")
SAVE_BATCH_EVENTS = 1000


class Ticker:
    """Strictly increasing event times, one second apart."""

    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


def extend_deal(ledger: DealLedger, deal_id: UUID, total_events: int, tick: Ticker) -> int:
    """Appends stage moves, amount revisions and notes until the deal has
    `total_events` events; saves every SAVE_BATCH_EVENTS events. Returns its version."""
    deal = ledger.get_deal(deal_id)
    pending = 0
    step = 0
    while deal.version < total_events:
        kind = step % 3
        step += 1
        if kind == 0:
            stage = (
                STAGES[(STAGES.index(deal.stage) + 1) % len(STAGES)]
                if deal.stage in STAGES
                else STAGES[0]
            )
            deal.move_to_stage(stage, "bench", SALES, tick())
        elif kind == 1:
            amount = Decimal(100_000 + (step % 7) * 1_000)
            if amount == deal.amount.amount:
                amount += 1
            deal.revise_amount(Money(amount, deal.amount.currency), "bench", SALES, tick())
        else:
            deal.add_note(f"call notes {step}", SALES, tick())
        pending += 1
        if pending >= SAVE_BATCH_EVENTS:
            ledger.save(deal)
            pending = 0
    if pending:
        ledger.save(deal)
    return int(deal.version)


def partners(count: int, tick: Ticker) -> list[Partner]:
    return [
        Partner.onboard(f"bp{n}", f"Bench Partner {n}", PartnerTier.GOLD, ["EMEA"], MANAGER, tick())
        for n in range(count)
    ]


def deal_story(rng: random.Random, codes: list[str], number: int, tick: Ticker) -> Deal:
    """A deal with 2 to ~14 events: opened (sourced or direct), moved, revised, partners
    attached with a split, notes, and usually closed as won or lost."""
    sourcing = rng.choice(codes) if rng.random() < 0.7 else None
    deal = Deal.open(
        uuid.uuid4(),
        f"Deal {number}",
        Customer(f"Customer {number}", f"customer{number}.example", "DE"),
        rng.choice(("cloud", "security")),
        Money(Decimal(rng.randint(10_000, 900_000)), rng.choice(("USD", "EUR", "GBP"))),
        date(2030, 1, 1),
        rng.choice(("sam", "ana")),
        rng.choice(("EMEA", "NA", "APAC")),
        "default",
        None,
        uuid.uuid4() if sourcing else None,
        sourcing,
        PartnerRole.RESELLER if sourcing else None,
        SALES,
        tick(),
    )
    for stage in STAGES[: rng.randint(1, len(STAGES))]:
        deal.move_to_stage(stage, "progress", SALES, tick())
    if rng.random() < 0.6:
        deal.revise_amount(
            Money(deal.amount.amount + rng.randint(1, 5_000), deal.amount.currency),
            "re-scoped",
            SALES,
            tick(),
        )
    other = rng.choice([c for c in codes if c != sourcing])
    if rng.random() < 0.5:
        deal.attach_partner(other, PartnerRole.INFLUENCER, SALES, tick())
        if len(deal.partners) == 2:
            first, second = sorted(deal.partners)
            deal.set_attribution({first: Decimal(70), second: Decimal(30)}, SALES, tick())
    for _ in range(rng.randint(0, 2)):
        deal.add_note("follow-up", SALES, tick())
    close = rng.random()
    if close < 0.4:
        deal.win(SALES, tick())
    elif close < 0.6:
        deal.lose(LossReason.PRICE, None, "", SALES, tick())
    return deal


def prepare_store(ledger: DealLedger, events: int, seed: int = 7) -> int:
    """Fills the ledger with about `events` events of partners and deals; returns
    how many were stored."""
    rng = random.Random(seed)
    tick = Ticker()
    team = partners(20, tick)
    codes = [p.code for p in team]
    stored = 0
    for partner in team:
        stored += len(partner.pending_events)
    ledger.save(*team)
    batch: list[LedgerAggregate] = []
    in_batch = 0
    number = 0
    while stored + in_batch < events:
        deal = deal_story(rng, codes, number, tick)
        number += 1
        batch.append(deal)
        in_batch += len(deal.pending_events)
        if in_batch >= SAVE_BATCH_EVENTS:
            ledger.save(*batch)
            stored += in_batch
            batch, in_batch = [], 0
    if batch:
        ledger.save(*batch)
        stored += in_batch
    return stored


Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def synthetic_records(count: int, seed: int = 11) -> Iterator[Record]:
    """`count` valid event messages (key, value, CloudEvents headers) as the relay
    would publish them, from deals built in memory; positions count up from 1."""
    rng = random.Random(seed)
    tick = Ticker()
    position = 0
    team = partners(20, tick)
    codes = [p.code for p in team]
    pending: list[Any] = [event for partner in team for event in partner.collect_events()]
    number = 0
    while position < count:
        if not pending:
            pending = list(deal_story(rng, codes, number, tick).collect_events())
            number += 1
        event = pending.pop(0)
        position += 1
        document = message_document(event, position)
        yield document["aggregate_id"].encode(), to_bytes(document), cloudevent_headers(document)
