"""ChannelProtection, the write-model guard of first-to-register: one per conflict key,
holding at most one protected registration and the claims still pending."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.errors import ChannelConflict, IllegalTransition
from domain.ids import protection_id
from domain.protection import ChannelProtection, ReleaseReason
from tests.unit.domain.builders import (
    BY_ACME,
    BY_MANAGER,
    BY_SALES,
    NOW,
    assert_replay_equals_live,
    pending_types,
)

KEY = "umbrella.example|analytics"
UNTIL = NOW + timedelta(days=90)


def _protection() -> ChannelProtection:
    return ChannelProtection.open(KEY, BY_ACME, NOW)


def _granted() -> tuple[ChannelProtection, UUID]:
    protection = _protection()
    holder = uuid4()
    protection.grant(holder, "acme", UNTIL, BY_ACME, NOW)
    return protection, holder


def test_a_key_opens_unprotected_under_the_id_its_key_names() -> None:
    protection = _protection()

    assert pending_types(protection) == [ChannelProtection.Opened]
    assert protection.id == protection_id(KEY)
    assert not protection.is_protected_at(NOW)
    assert not protection.has_lapsed_at(NOW)
    assert (protection.holder, protection.pending, protection.direct_deals) == (None, {}, [])


def test_a_grant_protects_the_key_until_its_time_and_not_a_moment_longer() -> None:
    """docs/architecture.md, invariant I1: protection holds until `protected_until`,
    also before any sweeper runs."""
    protection = _protection()
    holder = uuid4()
    protection.collect_events()

    protection.grant(holder, "acme", UNTIL, BY_ACME, NOW)

    assert pending_types(protection) == [ChannelProtection.Granted]
    assert (protection.holder, protection.holder_partner) == (holder, "acme")
    assert protection.protects(holder, UNTIL - timedelta(microseconds=1))
    assert not protection.is_protected_at(UNTIL)
    assert protection.has_lapsed_at(UNTIL)


def test_a_second_registration_is_never_granted_a_protected_key() -> None:
    """docs/architecture.md, invariants I1 and I2."""
    protection, holder = _granted()
    protection.collect_events()

    with pytest.raises(ChannelConflict) as caught:
        protection.grant(uuid4(), "globex", UNTIL, BY_MANAGER, NOW + timedelta(days=1))

    assert caught.value.details["holder_registration_id"] == str(holder)
    assert pending_types(protection) == []


def test_a_lapsed_protection_must_be_released_before_another_grant() -> None:
    protection, holder = _granted()

    with pytest.raises(IllegalTransition):
        protection.grant(uuid4(), "globex", UNTIL + timedelta(days=90), BY_MANAGER, UNTIL)
    assert protection.release(holder, ReleaseReason.EXPIRED, BY_MANAGER, UNTIL)
    protection.grant(uuid4(), "globex", UNTIL + timedelta(days=90), BY_MANAGER, UNTIL)

    assert protection.holder_partner == "globex"


def test_a_claim_is_pending_until_granted_or_dropped_and_is_recorded_once() -> None:
    protection = _protection()
    first, second = uuid4(), uuid4()
    protection.collect_events()

    protection.claim(first, "acme", BY_ACME, NOW)
    protection.claim(first, "acme", BY_ACME, NOW)
    protection.claim(second, "globex", BY_ACME, NOW)

    assert pending_types(protection) == [ChannelProtection.Claimed, ChannelProtection.Claimed]
    assert protection.is_contested_by_others(first)
    protection.grant(first, "acme", UNTIL, BY_MANAGER, NOW)
    protection.drop_claim(second, BY_MANAGER, NOW)
    protection.drop_claim(second, BY_MANAGER, NOW)
    assert pending_types(protection) == [ChannelProtection.Granted, ChannelProtection.ClaimDropped]
    assert protection.pending == {}
    assert not protection.is_contested_by_others(first)


def test_only_the_holder_extends_and_only_while_protected() -> None:
    protection, holder = _granted()
    later = UNTIL + timedelta(days=30)

    with pytest.raises(IllegalTransition):
        protection.extend(uuid4(), later, BY_MANAGER, NOW)
    with pytest.raises(IllegalTransition):
        protection.extend(holder, later, BY_MANAGER, UNTIL)
    protection.collect_events()
    protection.extend(holder, later, BY_MANAGER, NOW)

    assert pending_types(protection) == [ChannelProtection.Extended]
    assert protection.protected_until == later


def test_a_release_frees_the_key_only_for_its_holder() -> None:
    protection, holder = _granted()
    protection.collect_events()

    assert not protection.release(uuid4(), ReleaseReason.WITHDRAWN, BY_ACME, NOW)
    assert pending_types(protection) == []
    assert protection.release(holder, ReleaseReason.DEAL_CLOSED, BY_SALES, NOW)

    assert pending_types(protection) == [ChannelProtection.Released]
    assert (protection.holder, protection.holder_partner, protection.protected_until) == (
        None,
        None,
        None,
    )


def test_a_direct_deal_is_refused_on_a_protected_key() -> None:
    protection, _ = _granted()
    protection.collect_events()

    with pytest.raises(ChannelConflict):
        protection.refuse_direct_deal_if_protected(NOW)
    with pytest.raises(ChannelConflict):
        protection.record_direct_deal(uuid4(), BY_SALES, NOW)

    assert pending_types(protection) == []
    protection.record_direct_deal(uuid4(), BY_SALES, UNTIL)  # lapsed: no longer blocks
    assert protection.has_open_direct_deal


def test_direct_deals_are_remembered_while_open() -> None:
    protection = _protection()
    deal = uuid4()
    protection.collect_events()

    protection.record_direct_deal(deal, BY_SALES, NOW)
    protection.close_direct_deal(uuid4(), BY_SALES, NOW)  # not one of ours: nothing
    assert protection.has_open_direct_deal
    protection.close_direct_deal(deal, BY_SALES, NOW)

    assert pending_types(protection) == [
        ChannelProtection.DirectDealOpened,
        ChannelProtection.DirectDealClosed,
    ]
    assert not protection.has_open_direct_deal


def test_a_protection_replayed_from_its_events_equals_the_live_one() -> None:
    """docs/architecture.md, invariant I4, for every kind of protection event."""
    protection = _protection()
    first, second, deal = uuid4(), uuid4(), uuid4()
    protection.record_direct_deal(deal, BY_SALES, NOW)
    protection.close_direct_deal(deal, BY_SALES, NOW)
    protection.claim(first, "acme", BY_ACME, NOW)
    protection.claim(second, "globex", BY_ACME, NOW)
    protection.grant(first, "acme", UNTIL, BY_MANAGER, NOW)
    protection.drop_claim(second, BY_MANAGER, NOW)
    protection.extend(first, UNTIL + timedelta(days=30), BY_MANAGER, NOW)
    protection.release(first, ReleaseReason.WITHDRAWN, BY_ACME, NOW)

    assert_replay_equals_live(protection)
