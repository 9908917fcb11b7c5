"""Invariant I7, its erasure half (docs/architecture.md, docs/privacy.md): whatever
personal text is written about whichever customers, none of it is ever stored or
published in the clear; it reads back exactly while its customer's keys live, and as
`[erased]` everywhere once that customer is erased, without touching anyone else's."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from commands.ledger import DealLedger
from commands.models import AddDealNote, EraseDataSubject, RequestSupport
from domain.clock import ManualClock
from domain.deal import SupportKind
from domain.privacy import ERASED, WITHHELD
from projections.contract.encoding import Encoder
from tests.support.actors import MANAGER, SALES
from tests.support.driver import Driver, in_memory_ledger

CUSTOMERS = ("alpha.example", "beta.example", "gamma.example")
# Alphanumeric texts behind a prefix no stored JSON holds: their stored form is the
# text itself, and they cannot occur by chance in the store's JSON or in base64.
TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=40).map(
    lambda text: f"zqxj{text}"
)
WRITES = st.lists(
    st.tuples(st.integers(0, len(CUSTOMERS) - 1), st.booleans(), TEXT), min_size=1, max_size=25
)


def _stored(ledger: DealLedger, deals: list[UUID]) -> bytes:
    events = [n.state for n in ledger.recorder.select_notifications(1, 100_000)]
    snapshots = [
        s.state
        for deal in deals
        for s in ledger.snapshots.recorder.select_events(deal)  # type: ignore[union-attr]
    ]
    return b"\n".join(events + snapshots)


def _published(ledger: DealLedger) -> bytes:
    encoder = Encoder(ledger.mapper)
    return b"\n".join(
        encoder.encode(n).value for n in ledger.recorder.select_notifications(1, 100_000)
    )


def _texts(ledger: DealLedger, deal: UUID) -> list[str]:
    support = [r["note"] for r in ledger.get_deal(deal).support.values()]
    return sorted(ledger.deal_notes(deal) + support)


@given(writes=WRITES, erased=st.sets(st.integers(0, len(CUSTOMERS) - 1)))
def test_personal_text_is_sealed_and_erasure_reaches_exactly_its_subject(
    writes: list[tuple[int, bool, str]], erased: set[int]
) -> None:
    ledger = in_memory_ledger(ManualClock(datetime(2026, 3, 1, tzinfo=UTC)), snapshot_interval=4)
    drive = Driver(ledger)
    deals = [drive.open_deal(domain) for domain in CUSTOMERS]
    written: list[list[str]] = [[] for _ in CUSTOMERS]
    for customer, as_support, text in writes:
        if as_support:
            drive.run(
                RequestSupport, SALES, deal_id=deals[customer], kind=SupportKind.LEGAL, note=text
            )
        else:
            drive.run(AddDealNote, SALES, deal_id=deals[customer], text=text)
        written[customer].append(text)

    stored, published = _stored(ledger, deals), _published(ledger)
    for texts in written:
        for text in texts:
            assert text.encode() not in stored
            assert text.encode() not in published
    assert WITHHELD.encode() in published
    for i, deal in enumerate(deals):
        assert _texts(ledger, deal) == sorted(written[i])

    for i in sorted(erased):
        drive.run(EraseDataSubject, MANAGER, subject=f"someone@{CUSTOMERS[i]}")
    ledger.repository.cache = None  # reads come from the store: the snapshots too
    for i, deal in enumerate(deals):
        expected = [ERASED] * len(written[i]) if i in erased else sorted(written[i])
        assert _texts(ledger, deal) == expected
    published = _published(ledger)
    for i in erased:
        for text in written[i]:
            assert text.encode() not in published
