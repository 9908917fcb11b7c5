"""Normalisation of customer identity, the basis of channel conflict detection.

Conflict key = normalised customer domain + product line. Two registrations are
*near-duplicates* when they name the same normalised company, or the same
registrable domain under a different subdomain.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from publicsuffixlist import PublicSuffixList

from domain.errors import InvalidInput

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")

_LEGAL_SUFFIXES = frozenset(
    {
        "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "llp",
        "lp", "ltd", "limited", "plc", "gmbh", "ag", "kg", "se", "sa", "sas", "sarl",
        "srl", "spa", "bv", "nv", "oy", "ab", "as", "aps", "kk", "pty", "pte", "group",
        "holding", "holdings",
        # connectives of compound forms such as "GmbH & Co. KG" or "& Cie"
        "and", "und", "et", "cie",
    }
)  # fmt: skip


def normalise_domain(raw: str) -> str:
    """`HTTPS://WWW.Acme.com/path` -> `acme.com`; refuses what is not a host name."""
    text = raw.strip().lower()
    text = _SCHEME.sub("", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    text = text.split(":", 1)[0].rstrip(".")
    try:
        text = text.encode("idna").decode("ascii") if text else text
    except UnicodeError:
        raise InvalidInput(f"{raw!r} is not a valid domain", field="customer.domain") from None
    while text.startswith("www."):
        text = text[4:]
    labels = text.split(".")
    if (
        len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
        or len(text) > 253
    ):
        raise InvalidInput(
            f"{raw!r} is not a valid customer domain (expected e.g. 'acme.com')",
            field="customer.domain",
        )
    return text


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The list ships inside the package and is read once, on first use (about 0.1 s,
    # kept off start-up); nothing is fetched at run time. Its private section counts
    # too: sites under github.io or herokuapp.com belong to different customers.
    # A newer list arrives as a new package release, never by the package's updater.
    return PublicSuffixList()


def registrable_domain(domain: str) -> str:
    """The part a company registers, by the Public Suffix List: `eu.shop.acme.co.uk`
    -> `acme.co.uk`, `docs.foo.github.io` -> `foo.github.io`. A domain that is itself
    a public suffix (`co.uk`) is its own registrable domain."""
    return _public_suffixes().privatesuffix(domain) or domain


def normalise_company_name(name: str) -> str:
    """`ACME, Inc.` and `Acme Incorporated` -> `acme`; accents and punctuation dropped."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    # Dots go before tokenising so "S.A." and "L.L.C." read as "sa" and "llc".
    text = folded.lower().replace(".", "").replace("&", " and ")
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    return " ".join(words)


def normalise_product_line(product_line: str) -> str:
    text = " ".join(product_line.strip().lower().split())
    if not text:
        raise InvalidInput("product line must not be blank", field="product_line")
    return text


def conflict_key(domain: str, product_line: str) -> str:
    """The channel-protection key: one approved protection per key at any instant."""
    return f"{normalise_domain(domain)}|{normalise_product_line(product_line)}"
