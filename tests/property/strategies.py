"""What the property tests draw: partners, colliding customers, spellings, amounts, splits."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from tests.property.reference_model import Policy, Submission

POLICY = Policy(protection_days=90, max_extensions=2, auto_approve_limit=Decimal(250000))
CURRENCY = "EUR"  # the one currency with an auto-approval limit in the machine's policy
PARTNERS = ("northwind", "contoso", "fabrikam")

# Companies whose names or registrable domains collide on purpose.
COMPANIES = (
    ("Acme Inc", "acme.com"),
    ("ACME Incorporated", "acme.io"),
    ("Globex", "globex.com"),
    ("Globex GmbH", "eu.globex.com"),
    ("Initech", "initech.co.uk"),
    ("Initech Ltd", "shop.initech.co.uk"),
)
PRODUCTS = ("cloud", "Cloud ", "security")


def domain_spelling(domain: str, variant: int) -> str:
    """Spellings of one customer domain that must land on the same conflict key."""
    return [
        domain,
        f"WWW.{domain.upper()}",
        f"https://www.{domain}/contact",
        f"http://{domain.title()}:443",
    ][variant]


partners = st.sampled_from(PARTNERS)
companies = st.sampled_from(COMPANIES)
products = st.sampled_from(PRODUCTS)
# Around the auto-approval limit, which is inclusive; odd cents leave remainders to
# allocate when a converted deal is won.
values = st.sampled_from(
    [Decimal("125000.47"), POLICY.auto_approve_limit, POLICY.auto_approve_limit + Decimal("0.01")]
)
# Direct deals' amounts, in cents.
amounts = st.integers(1, 10**9).map(lambda cents: Decimal(cents) / 100)
# Days from now to an expected close date: some fall within the protection period.
close_in_days = st.one_of(st.just(365), st.integers(0, 200))
extension_days = st.integers(1, 60)


@st.composite
def submissions(draw: st.DrawFn) -> Submission:
    name, domain = draw(companies)
    return Submission(
        partner=draw(partners),
        name=name,
        domain=domain_spelling(domain, draw(st.integers(0, 3))),
        product=draw(products),
        value=draw(values),
        close_in_days=draw(close_in_days),
    )


# Relative weights of each attached partner's share; the split always sums to 100.
share_weights = st.lists(st.integers(0, 100), min_size=3, max_size=3).filter(any)


def split(partners: list[str], weights: list[int]) -> dict[str, Decimal]:
    """Exact shares in hundredths of a percent, summing to exactly 100."""
    if not partners:
        return {}
    used = [weights[i % len(weights)] for i in range(len(partners))]
    total = sum(used) or 1
    points = [w * 10_000 // total for w in used]
    points[0] += 10_000 - sum(points)
    return {p: Decimal(n) / 100 for p, n in zip(partners, points, strict=True)}
