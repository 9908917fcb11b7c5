"""Partner attribution: exact shares summing to 100 and exact revenue allocation."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.attribution import allocate, share_moves_to, shares_must_sum_to_one_hundred
from domain.errors import InvalidAttribution
from domain.values import Money

D = Decimal

# -- shares_must_sum_to_one_hundred -------------------------------------------


@pytest.mark.parametrize(
    "shares",
    [
        {},
        {"P1": D(100)},
        {"P1": D("60"), "P2": D("40")},
        {"P1": D("33.33"), "P2": D("33.33"), "P3": D("33.34")},
        {"P1": D("100.00"), "P2": D(0)},
        {"P1": D("1E+2")},
    ],
)
def test_exact_shares_summing_to_one_hundred_are_accepted(shares: dict[str, Decimal]) -> None:
    shares_must_sum_to_one_hundred(shares)


@pytest.mark.parametrize(
    "shares",
    [
        {"P1": D("99.99")},
        {"P1": D("60"), "P2": D("40.01")},
        {"P1": D("33.33"), "P2": D("33.33"), "P3": D("33.33")},
    ],
)
def test_shares_that_do_not_sum_to_exactly_one_hundred_are_refused(
    shares: dict[str, Decimal],
) -> None:
    with pytest.raises(InvalidAttribution, match="sum to exactly 100"):
        shares_must_sum_to_one_hundred(shares)


def test_a_negative_share_is_refused_even_when_the_total_is_one_hundred() -> None:
    with pytest.raises(InvalidAttribution, match="negative"):
        shares_must_sum_to_one_hundred({"P1": D(110), "P2": D(-10)})


@pytest.mark.parametrize("share", [100.0, 100, "100", D("NaN"), D("Infinity")])
def test_a_share_that_is_not_an_exact_finite_decimal_is_refused(share: Any) -> None:
    with pytest.raises(InvalidAttribution, match="exact decimal"):
        shares_must_sum_to_one_hundred({"P1": share})


# -- share_moves_to ------------------------------------------------------------


def test_a_leaving_partners_share_goes_to_the_sourcing_partner() -> None:
    shares = {"SRC": D(50), "BIG": D(30), "LEAVER": D(20)}
    assert share_moves_to(shares, "LEAVER", "SRC") == {"SRC": D(70), "BIG": D(30)}


def test_without_a_sourcing_partner_the_largest_holder_inherits() -> None:
    shares = {"A": D(20), "B": D(50), "LEAVER": D(30)}
    assert share_moves_to(shares, "LEAVER", None) == {"A": D(20), "B": D(80)}


def test_when_the_sourcing_partner_itself_leaves_the_largest_remaining_holder_inherits() -> None:
    shares = {"SRC": D(40), "A": D(25), "B": D(35)}
    assert share_moves_to(shares, "SRC", "SRC") == {"A": D(25), "B": D(75)}


def test_a_tie_for_largest_holder_is_broken_by_partner_code() -> None:
    shares = {"ZED": D(40), "ALPHA": D(40), "LEAVER": D(20)}
    assert share_moves_to(shares, "LEAVER", None) == {"ZED": D(40), "ALPHA": D(60)}


def test_when_the_last_partner_leaves_no_shares_remain() -> None:
    assert share_moves_to({"ONLY": D(100)}, "ONLY", "ONLY") == {}


def test_detaching_an_unattributed_partner_changes_nothing() -> None:
    shares = {"A": D(60), "B": D(40)}
    assert share_moves_to(shares, "STRANGER", "A") == shares


def test_share_moves_to_does_not_mutate_its_input() -> None:
    shares = {"A": D(60), "B": D(40)}
    share_moves_to(shares, "B", "A")
    assert shares == {"A": D(60), "B": D(40)}


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=6),
    st.data(),
)
def test_moving_a_share_keeps_the_total_at_one_hundred(
    weights: list[int], data: st.DataObject
) -> None:
    shares = _shares_from_basis_points(_basis_points(weights))
    partners = list(shares)
    leaving = data.draw(st.sampled_from(partners))
    sourcing = data.draw(st.one_of(st.none(), st.sampled_from(partners)))
    after = share_moves_to(shares, leaving, sourcing)
    assert leaving not in after
    shares_must_sum_to_one_hundred(after)


# -- allocate ------------------------------------------------------------------


def test_an_even_split_allocates_exactly() -> None:
    allocation = allocate(Money(D("1000.00"), "EUR"), {"A": D(60), "B": D(40)})
    assert allocation == {"A": Money(D("600.00"), "EUR"), "B": Money(D("400.00"), "EUR")}


def test_a_leftover_cent_goes_to_the_largest_remainder() -> None:
    allocation = allocate(
        Money(D("0.10"), "EUR"), {"A": D("33.33"), "B": D("33.33"), "C": D("33.34")}
    )
    assert allocation == {
        "A": Money(D("0.03"), "EUR"),
        "B": Money(D("0.03"), "EUR"),
        "C": Money(D("0.04"), "EUR"),
    }


def test_equal_remainders_are_settled_by_partner_code() -> None:
    allocation = allocate(Money(D("0.01"), "EUR"), {"B": D(50), "A": D(50)})
    assert allocation == {"A": Money(D("0.01"), "EUR"), "B": Money(D("0.00"), "EUR")}


def test_a_yen_amount_is_allocated_in_whole_yen() -> None:
    allocation = allocate(Money(D(100), "JPY"), {"A": D("33.33"), "B": D("33.33"), "C": D("33.34")})
    assert sum((m.amount for m in allocation.values()), D(0)) == D(100)
    assert all(m.amount == m.amount.to_integral_value() for m in allocation.values())
    assert sorted(m.amount for m in allocation.values()) == [D(33), D(33), D(34)]


def test_a_dinar_amount_is_allocated_in_fils() -> None:
    allocation = allocate(Money(D("0.001"), "KWD"), {"A": D(50), "B": D(50)})
    assert allocation == {"A": Money(D("0.001"), "KWD"), "B": Money(D("0.000"), "KWD")}


def test_no_shares_allocate_nothing() -> None:
    assert allocate(Money(D("10.00"), "EUR"), {}) == {}


def test_allocate_refuses_shares_that_do_not_sum_to_one_hundred() -> None:
    with pytest.raises(InvalidAttribution):
        allocate(Money(D("10.00"), "EUR"), {"A": D(50), "B": D(49)})


def test_an_amount_finer_than_the_minor_unit_is_still_allocated_exactly() -> None:
    amount = Money(D("10.005"), "EUR")
    allocation = allocate(amount, {"A": D(50), "B": D(50)})
    assert sum((m.amount for m in allocation.values()), D(0)) == amount.amount


def test_a_partner_with_a_zero_share_gets_nothing() -> None:
    allocation = allocate(Money(D("0.05"), "EUR"), {"A": D(0), "B": D("33.33"), "C": D("66.67")})
    assert allocation["A"] == Money(D("0.00"), "EUR")


def _basis_points(weights: list[int]) -> list[int]:
    """Scale non-negative integer weights to basis points summing to exactly 10000."""
    total = sum(weights)
    if total == 0:
        weights = [1] * len(weights)
        total = len(weights)
    points = [w * 10_000 // total for w in weights]
    points[points.index(max(points))] += 10_000 - sum(points)
    return points


def _shares_from_basis_points(points: list[int]) -> dict[str, Decimal]:
    return {f"P{i:02d}": D(p) / 100 for i, p in enumerate(points)}


@st.composite
def positive_basis_point_splits(draw: st.DrawFn) -> list[int]:
    """Between 1 and 8 positive integer basis-point shares summing to exactly 10000."""
    n = draw(st.integers(min_value=1, max_value=8))
    cuts = draw(
        st.lists(
            st.integers(min_value=1, max_value=9_999), min_size=n - 1, max_size=n - 1, unique=True
        )
    )
    bounds = [0, *sorted(cuts), 10_000]
    return [b - a for a, b in pairwise(bounds)]


def _assert_exact_allocation(amount: Money, shares: dict[str, Decimal], quantum: Decimal) -> None:
    allocation = allocate(amount, shares)
    assert set(allocation) == set(shares)
    assert all(isinstance(m, Money) and m.currency == amount.currency for m in allocation.values())
    assert sum((m.amount for m in allocation.values()), D(0)) == amount.amount
    for partner, money in allocation.items():
        exact = amount.amount * shares[partner] / 100
        assert abs(money.amount - exact) < quantum
        assert money.amount == money.amount.quantize(quantum)


@given(
    cents=st.integers(min_value=0, max_value=10**13),
    points=positive_basis_point_splits(),
)
def test_allocated_euro_revenue_sums_exactly_to_the_amount(cents: int, points: list[int]) -> None:
    """docs/architecture.md, invariant I3."""
    amount = Money(D(cents).scaleb(-2), "EUR")
    shares = _shares_from_basis_points(points)
    assert sum(shares.values(), D(0)) == 100
    _assert_exact_allocation(amount, shares, D("0.01"))


@given(
    yen=st.integers(min_value=0, max_value=10**13),
    points=positive_basis_point_splits(),
)
def test_allocated_yen_revenue_sums_exactly_to_the_amount(yen: int, points: list[int]) -> None:
    """docs/architecture.md, invariant I3."""
    _assert_exact_allocation(Money(D(yen), "JPY"), _shares_from_basis_points(points), D(1))
