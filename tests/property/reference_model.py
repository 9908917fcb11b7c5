"""A plain reference model of the channel programme, for the property tests.

It knows the rules as docs/architecture.md states them (first to register wins,
protection for a period with bounded extensions, near-duplicates to review, the
protected partner stays on its deal) and nothing of how the ledger implements them:
plain Python, statuses as plain strings, its own spelling rules for the customer
data the strategies draw. Each command method answers what the ledger must do —
refuse with a domain error code, or accept (with the status it must report) — and,
when it accepts, applies the change to the model. Creating commands are split in
two: the verdict first, then the new aggregate recorded under the ledger's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

# -- customer identity, as the brief spells it out -------------------------------------

# Public suffixes of more than one label that the strategies' companies sit under.
TWO_LABEL_SUFFIXES = frozenset({"co.uk"})
LEGAL_FORMS = frozenset({"inc", "incorporated", "gmbh", "ltd"})


def customer_domain(raw: str) -> str:
    """Lower-case, without scheme, path, port or `www.`."""
    text = raw.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split(":", 1)[0].rstrip(".")
    while text.startswith("www."):
        text = text[4:]
    return text


def product_line(raw: str) -> str:
    return " ".join(raw.lower().split())


def conflict_key(domain: str, product: str) -> str:
    return f"{customer_domain(domain)}|{product_line(product)}"


def registrable_domain(domain: str) -> str:
    labels = customer_domain(domain).split(".")
    keep = 3 if ".".join(labels[-2:]) in TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def company_name(name: str) -> str:
    """Lower-case words without punctuation or a trailing legal form."""
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    return " ".join(words)


# -- what the ledger must answer ----------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """`refusal`: the domain error code the ledger must refuse with; else accepted,
    reporting `status` when one is given."""

    refusal: str | None = None
    status: str | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None


ACCEPTED = Verdict()


def refused(code: str) -> Verdict:
    return Verdict(refusal=code)


# -- the model's state --------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    protection_days: int = 90
    max_extensions: int = 2
    auto_approve_limit: Decimal = Decimal(250000)  # in the one currency the model uses


@dataclass(frozen=True)
class Submission:
    partner: str
    name: str
    domain: str  # as the partner spelled it
    product: str
    value: Decimal
    close_in_days: int  # the expected close date, counted from the day of submission


PENDING = ("in_review", "action_required")


@dataclass
class Registration:
    id: UUID
    partner: str
    key: str
    product: str
    registrable_domain: str
    company: str
    status: str
    expected_close: date
    until: datetime | None = None
    extensions: int = 0
    released: bool = False  # its protection (or pending claim) is no longer held

    def holds_protection(self) -> bool:
        return self.status in ("approved", "converted") and not self.released

    def active_at(self, now: datetime) -> bool:
        """Protection holds until its time, swept or not."""
        return self.holds_protection() and self.until is not None and now < self.until

    def lapsed_at(self, now: datetime) -> bool:
        return self.holds_protection() and self.until is not None and now >= self.until

    def is_pending(self) -> bool:
        return self.status in PENDING

    def is_live(self) -> bool:
        """Still claims its company name and registrable domain."""
        return self.is_pending() or self.holds_protection()


@dataclass
class Deal:
    id: UUID
    key: str
    registration: UUID | None  # None: a direct deal
    expected_close: date
    status: str = "open"
    partners: list[str] = field(default_factory=list)
    sourcing: str | None = None


class Programme:
    """The channel programme as the brief states it, one command at a time."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.registrations: dict[UUID, Registration] = {}
        self.deals: dict[UUID, Deal] = {}
        self.suspended: set[str] = set()

    # -- questions --------------------------------------------------------------

    def holder(self, key: str, now: datetime) -> Registration | None:
        """The registration protecting `key` at `now`, if any."""
        for registration in self.registrations.values():
            if registration.key == key and registration.active_at(now):
                return registration
        return None

    def next_expiry(self, now: datetime) -> datetime | None:
        """When the next running protection ends."""
        ends = [r.until for r in self.registrations.values() if r.active_at(now) and r.until]
        return min(ends, default=None)

    def lapsed(self, now: datetime) -> set[UUID]:
        return {r.id for r in self.registrations.values() if r.lapsed_at(now)}

    def _release_lapsed_on(self, key: str, now: datetime) -> None:
        """A lapsed protection on `key` ends when the key is next used."""
        for registration in self.registrations.values():
            if registration.key == key and registration.lapsed_at(now):
                self._release_lapsed(registration)

    @staticmethod
    def _release_lapsed(registration: Registration) -> None:
        if registration.status == "approved":
            registration.status = "expired"
        registration.released = True

    def _protect(self, registration: Registration, now: datetime) -> None:
        registration.until = now + timedelta(days=self.policy.protection_days)

    # -- partners ---------------------------------------------------------------

    def suspend_or_reinstate(self, partner: str) -> bool:
        """Toggles the partner's standing; True when it is now suspended."""
        if partner in self.suspended:
            self.suspended.discard(partner)
            return False
        self.suspended.add(partner)
        return True

    # -- registrations ----------------------------------------------------------

    def submission(self, ask: Submission, now: datetime) -> Verdict:
        """Auto-approval needs a partner in good standing, a free key (neither
        protected, nor pending for anyone else, nor worked as a direct deal), no live
        near-duplicate, and a value within the limit."""
        if ask.partner in self.suspended:
            return refused("partner_suspended")
        key = conflict_key(ask.domain, ask.product)
        product = product_line(ask.product)
        near_duplicate = any(
            r.is_live()
            and r.product == product
            and r.key != key
            and (
                r.registrable_domain == registrable_domain(ask.domain)
                or r.company == company_name(ask.name)
            )
            for r in self.registrations.values()
        )
        free = not (
            self.holder(key, now) is not None
            or any(r.key == key and r.is_pending() for r in self.registrations.values())
            or any(
                d.key == key and d.registration is None and d.status == "open"
                for d in self.deals.values()
            )
        )
        within_limit = ask.value <= self.policy.auto_approve_limit
        approved = free and not near_duplicate and within_limit
        return Verdict(status="approved" if approved else "in_review")

    def submitted(
        self, registration_id: UUID, ask: Submission, verdict: Verdict, now: datetime
    ) -> None:
        key = conflict_key(ask.domain, ask.product)
        self._release_lapsed_on(key, now)
        registration = Registration(
            registration_id,
            ask.partner,
            key,
            product_line(ask.product),
            registrable_domain(ask.domain),
            company_name(ask.name),
            verdict.status or "in_review",
            (now + timedelta(days=ask.close_in_days)).date(),
        )
        if registration.status == "approved":
            self._protect(registration, now)
        self.registrations[registration_id] = registration

    def approve(self, registration_id: UUID, now: datetime) -> Verdict:
        registration = self.registrations[registration_id]
        if registration.status != "in_review":
            return refused("illegal_transition")
        if self.holder(registration.key, now) is not None:
            return refused("channel_conflict")
        self._release_lapsed_on(registration.key, now)
        registration.status = "approved"
        self._protect(registration, now)
        return Verdict(status="approved")

    def reject(self, registration_id: UUID) -> Verdict:
        registration = self.registrations[registration_id]
        if registration.status != "in_review":
            return refused("illegal_transition")
        registration.status = "rejected"
        registration.released = True
        return Verdict(status="rejected")

    def request_info(self, registration_id: UUID) -> Verdict:
        registration = self.registrations[registration_id]
        if registration.status != "in_review":
            return refused("illegal_transition")
        registration.status = "action_required"
        return Verdict(status="action_required")

    def resubmit(self, registration_id: UUID, close_in_days: int, now: datetime) -> Verdict:
        registration = self.registrations[registration_id]
        if registration.status != "action_required":
            return refused("illegal_transition")
        registration.status = "in_review"
        registration.expected_close = (now + timedelta(days=close_in_days)).date()
        return Verdict(status="in_review")

    def withdraw(self, registration_id: UUID) -> Verdict:
        registration = self.registrations[registration_id]
        if registration.status not in (*PENDING, "approved"):
            return refused("illegal_transition")
        registration.status = "withdrawn"
        registration.released = True
        registration.until = None
        return Verdict(status="withdrawn")

    def extend(self, registration_id: UUID, days: int, now: datetime) -> Verdict:
        """Only a protection still running is extended, a bounded number of times."""
        registration = self.registrations[registration_id]
        if not registration.active_at(now) or registration.extensions >= (
            self.policy.max_extensions
        ):
            return refused("illegal_transition")
        assert registration.until is not None
        registration.until += timedelta(days=days)
        registration.extensions += 1
        return ACCEPTED

    # -- deals ------------------------------------------------------------------

    def conversion(self, registration_id: UUID, now: datetime) -> Verdict:
        """An approved registration converts while protected; the deal takes the
        registration's expected close date, which must not have passed."""
        registration = self.registrations[registration_id]
        if registration.status == "approved" and not registration.active_at(now):
            return refused("illegal_transition")
        if registration.expected_close < now.date():
            return refused("invalid_input")
        if registration.status != "approved":
            return refused("illegal_transition")
        return Verdict(status="converted")

    def converted(self, registration_id: UUID, deal_id: UUID) -> None:
        registration = self.registrations[registration_id]
        registration.status = "converted"
        self.deals[deal_id] = Deal(
            deal_id,
            registration.key,
            registration_id,
            registration.expected_close,
            partners=[registration.partner],
            sourcing=registration.partner,
        )

    def direct_deal(self, key: str, now: datetime) -> Verdict:
        """A direct deal is refused while a partner protects the key."""
        if self.holder(key, now) is not None:
            return refused("channel_conflict")
        return Verdict(status="open")

    def opened(self, deal_id: UUID, key: str, expected_close: date) -> None:
        self.deals[deal_id] = Deal(deal_id, key, None, expected_close)

    def attach(self, deal_id: UUID, partner: str) -> Verdict:
        deal = self.deals[deal_id]
        if partner in self.suspended:
            return refused("partner_suspended")
        if deal.status != "open" or partner in deal.partners:
            return refused("illegal_transition")
        deal.partners.append(partner)
        return ACCEPTED

    def split(self, deal_id: UUID, partners: set[str]) -> Verdict:
        """Shares must name exactly the attached partners (and sum to 100)."""
        deal = self.deals[deal_id]
        if deal.status != "open":
            return refused("illegal_transition")
        if partners != set(deal.partners):
            return refused("invalid_attribution")
        return ACCEPTED

    def _sourcing_is_protected(self, deal: Deal, now: datetime) -> bool:
        if deal.registration is None:
            return False
        return self.registrations[deal.registration].active_at(now)

    def detach(self, deal_id: UUID, partner: str, now: datetime) -> Verdict:
        """The protected sourcing partner cannot be removed from its deal."""
        deal = self.deals[deal_id]
        if deal.status != "open" or partner not in deal.partners:
            return refused("illegal_transition")
        if partner == deal.sourcing and self._sourcing_is_protected(deal, now):
            return refused("protected_partner")
        deal.partners.remove(partner)
        return ACCEPTED

    def close(self, deal_id: UUID, won: bool) -> Verdict:
        """Protection ends when the converted deal closes, won or lost."""
        deal = self.deals[deal_id]
        if deal.status != "open":
            return refused("illegal_transition")
        deal.status = "won" if won else "lost"
        if deal.registration is not None:
            registration = self.registrations[deal.registration]
            if registration.holds_protection():
                registration.released = True
        return Verdict(status=deal.status)

    def reopen(self, deal_id: UUID, new_close: date | None, now: datetime) -> Verdict:
        """A reopened deal gets back the protection time its registration had left,
        unless another partner holds the key by now; a deal whose date has passed
        needs a new one."""
        deal = self.deals[deal_id]
        if deal.status == "open":
            return refused("illegal_transition")
        if new_close is None and deal.expected_close < now.date():
            return refused("invalid_input")
        holder = self.holder(deal.key, now)
        if holder is not None and holder.id != deal.registration:
            return refused("channel_conflict")
        deal.status = "open"
        deal.expected_close = new_close or deal.expected_close
        if deal.registration is not None:
            self._release_lapsed_on(deal.key, now)
            registration = self.registrations[deal.registration]
            if registration.until is not None and registration.until > now:
                registration.released = False
        return Verdict(status="open")

    # -- time -------------------------------------------------------------------

    def sweep(self, now: datetime) -> set[UUID]:
        """Every protection whose time has passed ends; returns their registrations."""
        expired = self.lapsed(now)
        for registration_id in expired:
            self._release_lapsed(self.registrations[registration_id])
        return expired
