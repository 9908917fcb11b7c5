"""Normalisation of customer identity, the basis of channel conflict detection.

Conflict key = normalised customer domain + product line. Two registrations are
*near-duplicates* when they name the same normalised company, or the same
registrable domain under a different subdomain.
"""

from __future__ import annotations

import re
import unicodedata

from domain.errors import InvalidInput

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")

# Public suffixes with more than one label that customers commonly sit under.
# A full Public Suffix List would be more exact; this covers the usual business
# registries while keeping the domain layer free of data files and I/O.
_MULTI_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "co.jp", "or.jp", "ne.jp", "ac.jp", "co.kr", "or.kr",
        "com.br", "net.br", "org.br", "com.mx", "com.ar", "com.co", "com.tr",
        "co.in", "net.in", "org.in", "firm.in", "gen.in", "ind.in",
        "com.cn", "net.cn", "org.cn", "com.hk", "com.sg", "com.my", "com.tw",
        "co.za", "org.za", "co.il", "com.pl", "com.es", "com.pt", "co.at", "or.at",
    }
)  # fmt: skip

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


def registrable_domain(domain: str) -> str:
    """The part a company registers: `eu.shop.acme.co.uk` -> `acme.co.uk`."""
    labels = domain.split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in _MULTI_LABEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


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
