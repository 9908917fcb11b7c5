"""CustomerIndex: which conflict keys are live under one company name or registrable
domain, so near-duplicates are found in the write model."""

from __future__ import annotations

from uuid import uuid4

from domain.ids import customer_index_id
from domain.protection import CustomerIndex, IndexKind
from tests.unit.domain.builders import BY_ACME, NOW, assert_replay_equals_live, pending_types


def _index() -> CustomerIndex:
    return CustomerIndex.open(IndexKind.REGISTRABLE_DOMAIN, "acme.co.uk", "cloud", BY_ACME, NOW)


def test_an_index_opens_empty_under_the_id_its_kind_value_and_product_line_name() -> None:
    index = _index()

    assert pending_types(index) == [CustomerIndex.Opened]
    assert index.id == customer_index_id("registrable_domain", "acme.co.uk", "cloud")
    assert (index.kind, index.value, index.product_line, index.claims) == (
        IndexKind.REGISTRABLE_DOMAIN,
        "acme.co.uk",
        "cloud",
        {},
    )


def test_claims_on_other_keys_are_near_duplicates_and_the_same_key_is_not() -> None:
    index = _index()
    index.claim(uuid4(), "acme.co.uk|cloud", BY_ACME, NOW)
    index.claim(uuid4(), "shop.acme.co.uk|cloud", BY_ACME, NOW)

    assert index.other_keys_than("acme.co.uk|cloud") == {"shop.acme.co.uk|cloud"}
    assert index.other_keys_than("eu.acme.co.uk|cloud") == {
        "acme.co.uk|cloud",
        "shop.acme.co.uk|cloud",
    }


def test_a_claim_is_recorded_once_and_released_once() -> None:
    index = _index()
    registration = uuid4()
    index.collect_events()

    index.claim(registration, "acme.co.uk|cloud", BY_ACME, NOW)
    index.claim(registration, "acme.co.uk|cloud", BY_ACME, NOW)
    index.release(registration, BY_ACME, NOW)
    index.release(registration, BY_ACME, NOW)

    assert pending_types(index) == [CustomerIndex.Claimed, CustomerIndex.Released]
    assert index.claims == {}
    assert index.other_keys_than("x|cloud") == set()


def test_an_index_replayed_from_its_events_equals_the_live_one() -> None:
    """docs/architecture.md, invariant I4."""
    index = _index()
    first, second = uuid4(), uuid4()
    index.claim(first, "acme.co.uk|cloud", BY_ACME, NOW)
    index.claim(second, "shop.acme.co.uk|cloud", BY_ACME, NOW)
    index.release(first, BY_ACME, NOW)

    assert_replay_equals_live(index)
