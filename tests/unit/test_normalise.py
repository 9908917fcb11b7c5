"""Customer identity normalisation: the basis of the channel-conflict rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from commands.ledger import DealLedger
from commands.models import ActorIn, CustomerIn, MoneyIn, OnboardPartner, SubmitRegistration
from domain.clock import ManualClock
from domain.errors import InvalidInput
from domain.normalise import (
    conflict_key,
    normalise_company_name,
    normalise_domain,
    normalise_product_line,
    registrable_domain,
)
from domain.values import Actor, Role

# -- normalise_domain ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "acme.com",
        "ACME.COM",
        "Acme.Com",
        "www.acme.com",
        "WWW.Acme.com",
        "www.www.acme.com",
        "http://acme.com",
        "https://www.acme.com",
        "HTTPS://WWW.Acme.com/path?q=1#frag",
        "ftp://acme.com",
        "acme.com/",
        "acme.com/some/path",
        "acme.com?query=1",
        "acme.com#fragment",
        "acme.com:8080",
        "https://acme.com:443/login",
        "acme.com.",
        "acme.com..",
        "  acme.com  ",
        "user@acme.com",
        "https://user:secret@www.acme.com/",
    ],
)
def test_scheme_www_case_path_port_and_trailing_dot_are_ignored(raw: str) -> None:
    assert normalise_domain(raw) == "acme.com"


def test_subdomains_other_than_www_are_kept() -> None:
    assert normalise_domain("https://EU.Shop.Acme.co.uk/") == "eu.shop.acme.co.uk"


def test_a_www_like_label_that_is_not_exactly_www_is_kept() -> None:
    assert normalise_domain("www2.acme.com") == "www2.acme.com"
    assert normalise_domain("wwwacme.com") == "wwwacme.com"


def test_internationalised_domains_are_stored_in_their_ascii_idna_form() -> None:
    assert normalise_domain("Bücher.de") == "xn--bcher-kva.de"
    assert normalise_domain("https://www.BÜCHER.de/shop") == "xn--bcher-kva.de"


def test_an_already_encoded_idna_domain_is_unchanged() -> None:
    assert normalise_domain("xn--bcher-kva.de") == "xn--bcher-kva.de"


def test_full_width_characters_and_ideographic_dots_fold_to_ascii() -> None:
    assert (
        normalise_domain("\uff57\uff57\uff57\uff0e\uff21\uff23\uff2d\uff25\u3002com") == "acme.com"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "localhost",
        "acme",
        "http://",
        "https:///path",
        "a..b.com",
        ".acme.com",
        "-acme.com",
        "acme-.com",
        "acme_corp.com",
        "acme corp.com",
        "acme.123",
        "www.com",
        "//acme.com",
        "a" * 64 + ".com",
        ".".join(["a" * 60] * 5) + ".com",
    ],
)
def test_what_is_not_a_host_name_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_domain(raw)
    assert caught.value.details["field"] == "customer.domain"


@pytest.mark.parametrize(
    "raw",
    ["1.2.3.4", "192.168.0.1", "http://10.0.0.1:8080/admin", "[::1]", "http://[2001:db8::1]/"],
)
def test_ip_addresses_are_not_customer_domains(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_domain(raw)


def test_the_refusal_quotes_the_raw_input() -> None:
    with pytest.raises(InvalidInput, match="'localhost'"):
        normalise_domain("localhost")


# -- registrable_domain -------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "registrable"),
    [
        ("acme.com", "acme.com"),
        ("shop.acme.com", "acme.com"),
        ("eu.shop.acme.com", "acme.com"),
        ("acme.co.uk", "acme.co.uk"),
        ("eu.shop.acme.co.uk", "acme.co.uk"),
        ("shop.acme.com.au", "acme.com.au"),
        ("acme.co.jp", "acme.co.jp"),
        ("sales.acme.de", "acme.de"),
    ],
)
def test_the_registrable_domain_is_the_label_under_the_public_suffix(
    domain: str, registrable: str
) -> None:
    assert registrable_domain(domain) == registrable


def test_subdomains_of_one_company_share_a_registrable_domain() -> None:
    assert registrable_domain(normalise_domain("https://eu.acme.co.uk")) == registrable_domain(
        normalise_domain("us.acme.co.uk")
    )


def test_sibling_companies_under_a_multi_label_suffix_are_not_merged() -> None:
    assert registrable_domain("acme.co.uk") != registrable_domain("globex.co.uk")


def test_sites_under_a_private_hosting_suffix_belong_to_different_customers() -> None:
    # github.io is in the Public Suffix List's private section: each site is its own owner.
    assert registrable_domain("foo.github.io") == "foo.github.io"
    assert registrable_domain("docs.foo.github.io") == "foo.github.io"
    assert registrable_domain("foo.github.io") != registrable_domain("bar.github.io")
    assert registrable_domain("shop.acme.herokuapp.com") == "acme.herokuapp.com"


@pytest.mark.parametrize(
    ("domain", "registrable"),
    [
        # kawasaki.jp and *.kawasaki.jp are public, but !city.kawasaki.jp is an exception.
        ("city.kawasaki.jp", "city.kawasaki.jp"),
        ("www.city.kawasaki.jp", "city.kawasaki.jp"),
        ("shop.acme.ward.kawasaki.jp", "acme.ward.kawasaki.jp"),
        # *.ck: every second-level name is public, except !www.ck.
        ("shop.acme.co.ck", "acme.co.ck"),
        ("shop.www.ck", "www.ck"),
        # ICANN suffixes the hand-kept list did not know.
        ("shop.acme.com.vn", "acme.com.vn"),
        ("eu.acme.gov.br", "acme.gov.br"),
        # A TLD the list does not name counts as a public suffix of its own.
        ("shop.umbrella.example", "umbrella.example"),
        # Internationalised names are held in their ASCII form.
        ("shop.xn--bcher-kva.xn--fiqs8s", "xn--bcher-kva.xn--fiqs8s"),
    ],
)
def test_the_registrable_domain_follows_the_public_suffix_list(
    domain: str, registrable: str
) -> None:
    assert registrable_domain(domain) == registrable


@pytest.mark.parametrize("suffix", ["co.uk", "github.io", "ward.kawasaki.jp", "co.ck"])
def test_a_domain_that_is_itself_a_public_suffix_is_its_own_registrable_domain(
    suffix: str,
) -> None:
    assert registrable_domain(suffix) == suffix


def test_two_sites_under_github_io_are_not_near_duplicates() -> None:
    ledger = DealLedger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        clock=ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    )
    manager = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
    ledger.execute(OnboardPartner(command_id="on", actor=manager, partner_code="p1", name="P1"))

    def submit(name: str, domain: str) -> list[str]:
        outcome = ledger.execute(
            SubmitRegistration(
                command_id=f"sub-{domain}",
                actor=ActorIn.of(Actor.partner("p1")),
                partner_code="p1",
                customer=CustomerIn(name=name, domain=domain, country="US"),
                product_line="cloud",
                estimated_value=MoneyIn(amount=Decimal(1000), currency="USD"),
                expected_close=date(2026, 9, 30),
            )
        )
        return list(outcome.result["review_reasons"])

    assert submit("Foo Labs", "foo.github.io") == []
    assert submit("Bar Studio", "bar.github.io") == []
    # The same site under another subdomain still is one.
    assert submit("Foo Docs", "docs.foo.github.io") == ["near_duplicate"]


# -- normalise_company_name ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "acme",
        "ACME",
        "ACME, Inc.",
        "Acme Inc",
        "Acme Incorporated",
        "Acme Corp.",
        "Acme Corporation",
        "Acme LLC",
        "Acme Ltd",
        "Acme Limited",
        "Acme GmbH",
        "Acme SA",
        "Acme Holdings Group",
        "The Acme Company",
        "  Acme   ",
        "ACME!!!",
    ],
)
def test_legal_forms_case_and_punctuation_do_not_change_the_company_name(name: str) -> None:
    assert normalise_company_name(name) == "acme"


def test_accents_are_folded_away() -> None:
    assert normalise_company_name("Société Générale") == "societe generale"


def test_an_ampersand_reads_as_and() -> None:
    assert normalise_company_name("Smith & Sons") == normalise_company_name("Smith and Sons")


def test_a_name_that_is_only_a_legal_form_is_kept() -> None:
    assert normalise_company_name("Holding") == "holding"
    assert normalise_company_name("The") == "the"


def test_different_companies_stay_different() -> None:
    assert normalise_company_name("Acme Inc") != normalise_company_name("Globex Inc")


@pytest.mark.parametrize(
    ("dotted", "plain"),
    [("Acme S.A.", "Acme SA"), ("Acme, L.L.C.", "Acme LLC"), ("Acme B.V.", "Acme BV")],
)
def test_dotted_legal_form_abbreviations_match_their_undotted_forms(
    dotted: str, plain: str
) -> None:
    assert normalise_company_name(dotted) == normalise_company_name(plain)


def test_the_gmbh_and_co_kg_legal_form_is_dropped() -> None:
    assert normalise_company_name("Acme GmbH & Co. KG") == normalise_company_name("Acme GmbH")


# -- product lines and conflict keys ------------------------------------------


def test_product_line_is_case_and_whitespace_insensitive() -> None:
    assert normalise_product_line("  Cloud\tSECURITY  ") == "cloud security"


def test_a_blank_product_line_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_product_line("   ")
    assert caught.value.details["field"] == "product_line"


def test_www_and_scheme_are_ignored_in_the_conflict_key() -> None:
    assert conflict_key("WWW.Acme.com", "Cloud Security") == conflict_key(
        "acme.com", "cloud security"
    )
    assert conflict_key("https://www.acme.com/", "  cloud   security ") == (
        "acme.com|cloud security"
    )


def test_different_product_lines_give_different_conflict_keys() -> None:
    assert conflict_key("acme.com", "cloud") != conflict_key("acme.com", "network")


def test_different_subdomains_give_different_conflict_keys() -> None:
    assert conflict_key("eu.acme.com", "cloud") != conflict_key("us.acme.com", "cloud")


def test_a_conflict_key_refuses_a_bad_domain() -> None:
    with pytest.raises(InvalidInput):
        conflict_key("localhost", "cloud")


# -- properties ---------------------------------------------------------------

_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
_tld = st.from_regex(r"\A[a-z]{2,6}\Z")


@st.composite
def valid_domains(draw: st.DrawFn) -> str:
    labels = draw(st.lists(_label, min_size=1, max_size=3))
    domain = ".".join([*labels, draw(_tld)])
    assume(labels[0] != "www")
    return domain


@st.composite
def case_variants(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


_domainish = st.lists(
    st.sampled_from(
        [
            *"abcxyz019-.:/@?#_ ",
            "A",
            "W",
            "ü",
            "ß",
            "\u3002",
            "\uff57",
            "www.",
            "http://",
            "xn--",
            ".com",
        ]
    ),
    max_size=16,
).map("".join)


@given(st.one_of(_domainish, st.text(max_size=24)))
def test_normalise_domain_is_idempotent_on_its_outputs(raw: str) -> None:
    try:
        normalised = normalise_domain(raw)
    except InvalidInput:
        return
    assert normalise_domain(normalised) == normalised


@given(valid_domains())
def test_a_valid_lower_case_domain_is_its_own_normal_form(domain: str) -> None:
    assert normalise_domain(domain) == domain


@given(
    data=st.data(),
    domain=valid_domains(),
    scheme=st.sampled_from(["", "http://", "https://", "HTTPS://"]),
    www=st.sampled_from(["", "www.", "WWW.", "www.www."]),
    tail=st.sampled_from(["", "/", "/path?q=1", ":8443", ".", ":443/x#frag"]),
    product=st.sampled_from(["Cloud Security", "networking"]),
)
def test_any_case_www_or_scheme_variant_of_a_domain_gives_the_same_conflict_key(
    data: st.DataObject, domain: str, scheme: str, www: str, tail: str, product: str
) -> None:
    variant = scheme + www + data.draw(case_variants(domain)) + tail
    product_variant = "  " + data.draw(case_variants(product)).replace(" ", " \t ") + " "
    assert conflict_key(variant, product_variant) == conflict_key(domain, product)
    assert conflict_key(variant, product_variant) == f"{domain}|{product.lower()}"
