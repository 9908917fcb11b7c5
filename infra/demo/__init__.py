"""The main job on the embedded default: a scripted partner-programme scenario.

`run_demo` drives the real write side (`DealLedger.execute`) on the embedded SQLite
store with a hand-moved clock, prints each step as it happens, and ends with tables
of partners, registrations and deals. Everything printed about state is loaded back
from the ledger (aggregates and the stored event log), never taken from what the
script sent.

The demo has a store of its own (``.dealledger/demo.sqlite`` unless told otherwise),
never the one ``serve`` and ``keys`` use, and it marks the stores it creates: it
replaces or appends to a marked store only, unless forced.

With ``fresh=False`` (``dealledger demo --keep``) another run is appended to the
existing store: its clock starts after the last stored event, and partner codes,
product lines and command ids carry a run suffix, so the same rules play out again.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from commands.ledger import DealLedger
from commands.models import (
    ActorIn,
    ApproveRegistration,
    AssignSupport,
    AttachPartner,
    Command,
    ConvertRegistration,
    CustomerIn,
    ExpireProtections,
    ExtendProtection,
    MarkDealLost,
    MarkDealWon,
    MoneyIn,
    MoveDealStage,
    OnboardPartner,
    OpenDeal,
    RejectRegistration,
    RequestRegistrationInfo,
    RequestSupport,
    ResolveSupport,
    ResubmitRegistration,
    ReviseDealAmount,
    SetAttribution,
    SubmitRegistration,
    SuspendPartner,
)
from commands.outcome import Outcome
from domain.clock import ManualClock
from domain.deal import Deal, DealStatus, LossReason, PartnerRole, SupportKind
from domain.errors import DomainError
from domain.partner import Partner, PartnerTier
from domain.protection import ChannelProtection
from domain.registration import Registration, RegistrationStatus, RejectionReason
from domain.values import Actor, Role
from infra.bootstrap import Wiring
from infra.settings import Settings

DEMO_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning
DEMO_STORE = Path(".dealledger") / "demo.sqlite"
# A table only the demo creates: its mark on the stores it may replace.
DEMO_MARKER = "dealledger_demo_store"
_PAGE = 1000
_WIDTH = 118  # step lines wrap here, continuing under the text
_INDENT = len("[2026-01-05 09:00] ")

CAROL = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
SAM = ActorIn.of(Actor.user("sam", Role.SALES))

Cell = str | Sequence[str]


class DemoFailed(Exception):
    """The ledger did not behave the way the scenario expects."""


class DemoRefused(Exception):
    """The demo will not touch this store: it did not create it."""


# -- reading the store back ---------------------------------------------------------


def stored_events(ledger: DealLedger) -> Iterator[object]:
    """Every stored domain event, in ledger order, read page by page."""
    start = 1
    while True:
        page = ledger.recorder.select_notifications(start=start, limit=_PAGE)
        for notification in page:
            yield ledger.mapper.to_domain_event(notification)
        if len(page) < _PAGE:
            return
        start = page[-1].id + 1


def _command_id(event: object) -> str:
    cause = getattr(event, "cause", None)
    return str(getattr(cause, "command_id", ""))


@dataclass
class _History:
    """What the report needs from the event log beyond the aggregates' current state."""

    partners: list[str] = field(default_factory=list)
    registrations: list[UUID] = field(default_factory=list)
    deals: list[UUID] = field(default_factory=list)
    review_reasons: dict[UUID, list[str]] = field(default_factory=dict)
    releases: dict[UUID, tuple[datetime, str]] = field(default_factory=dict)
    events: int = 0


def _read_history(ledger: DealLedger, command_prefix: str) -> _History:
    """The aggregates this run's commands created, and review and release history."""
    history = _History()
    for event in stored_events(ledger):
        history.events += 1
        mine = _command_id(event).startswith(command_prefix)
        if isinstance(event, Partner.Onboarded) and mine:
            history.partners.append(event.code)
        elif isinstance(event, Registration.Submitted) and mine:
            history.registrations.append(event.originator_id)
        elif isinstance(event, Deal.Opened) and mine:
            history.deals.append(event.originator_id)
        elif isinstance(event, Registration.SentToReview):
            history.review_reasons.setdefault(event.originator_id, []).extend(event.reasons)
        elif isinstance(event, Registration.Resubmitted):
            history.review_reasons.setdefault(event.originator_id, []).append("resubmitted")
        elif isinstance(event, ChannelProtection.Released):
            history.releases[event.registration_id] = (event.timestamp, event.reason.value)
    return history


# -- plain-text output ----------------------------------------------------------------


def format_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """A fixed-width table; a cell given as a list of strings spans several lines."""
    grid = [[[c] if isinstance(c, str) else list(c) or [""] for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in grid:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], *(len(text) for text in cell))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [title, line(headers), line(["-" * w for w in widths])]
    for row in grid:
        for k in range(max(len(cell) for cell in row)):
            out.append(line([cell[k] if k < len(cell) else "" for cell in row]))
    return out


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "-"


def _pct(share: Decimal) -> str:
    return f"{share.normalize():f}%"


def _short(some_id: UUID) -> str:
    return str(some_id)[:8]


# -- the scenario -------------------------------------------------------------------


class _Scenario:
    """The story, told through `ledger.execute` and read back after every step."""

    def __init__(self, ledger: DealLedger, clock: ManualClock, run: int) -> None:
        self.ledger = ledger
        self.clock = clock
        self.run = run
        self.day0 = clock.now().date()
        self.prefix = "demo:" if run == 1 else f"demo-r{run}:"
        self.suffix = "" if run == 1 else f"-r{run}"

    # helpers ---------------------------------------------------------------

    def code(self, name: str) -> str:
        return f"{name}{self.suffix}"

    def product(self, name: str) -> str:
        return name if self.run == 1 else f"{name} r{self.run}"

    def cid(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def partner_actor(self, name: str) -> ActorIn:
        return ActorIn.of(Actor.partner(self.code(name)))

    def at(self, day: int, hour: int, minute: int = 0) -> None:
        """Move the clock to `day` days after the run's first day, at hour:minute UTC."""
        self.clock.set(datetime.combine(self.day0 + timedelta(days=day), time(hour, minute), UTC))

    def close_date(self, days: int) -> date:
        return self.day0 + timedelta(days=days)

    def say(self, text: str) -> None:
        print(
            textwrap.fill(
                f"[{_when(self.clock.now())}] {text}",
                width=_WIDTH,
                subsequent_indent=" " * _INDENT,
                break_on_hyphens=False,
            )
        )

    def execute(self, command: Command) -> Outcome:
        try:
            return self.ledger.execute(command)
        except DomainError as exc:
            raise DemoFailed(
                f"{command.type_name} was refused unexpectedly: {exc.code}: {exc.message}"
            ) from exc

    def refused(self, command: Command, code: str) -> DomainError:
        try:
            self.ledger.execute(command)
        except DomainError as exc:
            if exc.code != code:
                raise DemoFailed(
                    f"{command.type_name} was refused with {exc.code}, not {code}: {exc.message}"
                ) from exc
            return exc
        raise DemoFailed(f"{command.type_name} {command.command_id} should have been refused")

    def expect(self, condition: bool, what: str) -> None:
        if not condition:
            raise DemoFailed(what)

    def submitted(self, command: SubmitRegistration) -> Registration:
        outcome = self.execute(command)
        if outcome.aggregate_id is None:
            raise DemoFailed("a submission named no registration")
        return self.ledger.get_registration(outcome.aggregate_id)

    def opened(self, outcome: Outcome) -> Deal:
        if outcome.aggregate_id is None:
            raise DemoFailed(f"{outcome.command_type} named no deal")
        return self.ledger.get_deal(outcome.aggregate_id)

    @staticmethod
    def reg_state(reg: Registration) -> str:
        state = reg.status.value
        if reg.status is RegistrationStatus.APPROVED:
            how = "auto" if reg.approved_automatically else "review"
            state += f" ({how}), protected until {_when(reg.protected_until)}"
        elif reg.review_reasons:
            state += " [" + ", ".join(reg.review_reasons) + "]"
        return state

    # the story -------------------------------------------------------------

    def play(self) -> None:
        self.onboard_partners()
        globex, initech = self.registrations()
        globex_deal, initech_deal = self.open_deals(globex, initech)
        self.work_deals(globex_deal, initech_deal)
        self.resend(initech_deal)
        self.sweep()

    def onboard_partners(self) -> None:
        roster = [
            ("northwind", "Northwind Traders", PartnerTier.GOLD, ["EMEA", "NA"]),
            ("contoso", "Contoso Solutions", PartnerTier.SILVER, ["EMEA"]),
            ("fabrikam", "Fabrikam Integration", PartnerTier.PLATINUM, ["NA", "APAC"]),
            ("tailspin", "Tailspin Resellers", PartnerTier.REGISTERED, ["LATAM"]),
        ]
        for i, (name, title, tier, regions) in enumerate(roster):
            self.at(0, 9, 5 * i)
            self.execute(
                OnboardPartner(
                    command_id=self.cid(f"onboard-{name}"),
                    actor=CAROL,
                    partner_code=self.code(name),
                    name=title,
                    tier=tier,
                    regions=regions,
                )
            )
            partner = self.ledger.get_partner(self.code(name))
            self.say(
                f"carol onboards {partner.code}: {partner.name}, {partner.tier.value}, "
                f"{'/'.join(partner.regions)}"
            )
        self.at(0, 11, 30)
        self.execute(
            SuspendPartner(
                command_id=self.cid("suspend-tailspin"),
                actor=CAROL,
                partner_code=self.code("tailspin"),
                reason="reseller agreement lapsed",
            )
        )
        tailspin = self.ledger.get_partner(self.code("tailspin"))
        self.expect(tailspin.suspended, "tailspin should be suspended")
        self.say(f"carol suspends {tailspin.code}: {tailspin.suspension_reason}")
        self.at(0, 11, 45)
        err = self.refused(
            SubmitRegistration(
                command_id=self.cid("tailspin-umbrella"),
                actor=self.partner_actor("tailspin"),
                partner_code=self.code("tailspin"),
                customer=CustomerIn(name="Umbrella Corp", domain="umbrella.com.br", country="BR"),
                product_line=self.product("Analytics Cloud"),
                estimated_value=MoneyIn(amount=Decimal("40000"), currency="USD"),
                expected_close=self.close_date(60),
            ),
            "partner_suspended",
        )
        self.say(f"{tailspin.code} registers umbrella.com.br -> REFUSED {err.code}: {err.message}")

    def registrations(self) -> tuple[UUID, UUID]:
        analytics = self.product("Analytics Cloud")
        globex_corp = CustomerIn(name="Globex Corporation", domain="globex.com", country="US")

        # First to register wins: a free key, within limits -> auto-approved.
        self.at(1, 10, 15)
        globex = self.submitted(
            SubmitRegistration(
                command_id=self.cid("northwind-globex"),
                actor=self.partner_actor("northwind"),
                partner_code=self.code("northwind"),
                customer=globex_corp,
                product_line=analytics,
                estimated_value=MoneyIn(amount=Decimal("180000"), currency="USD"),
                expected_close=self.close_date(85),
                notes="met the CIO at their EMEA summit",
            )
        )
        self.expect(globex.approved_automatically, "globex.com should be auto-approved")
        self.say(
            f"{globex.partner_code} registers {globex.customer.domain} / {globex.product_line} "
            f"({globex.estimated_value}) -> {self.reg_state(globex)}"
        )

        # The same key written differently: routed to review, rejected as a duplicate.
        self.at(1, 14, 40)
        dup = self.submitted(
            SubmitRegistration(
                command_id=self.cid("contoso-globex"),
                actor=self.partner_actor("contoso"),
                partner_code=self.code("contoso"),
                customer=CustomerIn(name="Globex", domain="https://WWW.Globex.com/", country="US"),
                product_line=analytics,
                estimated_value=MoneyIn(amount=Decimal("95000"), currency="USD"),
                expected_close=self.close_date(90),
            )
        )
        self.expect("key_protected" in dup.review_reasons, "the globex.com key is protected")
        self.say(
            f"{dup.partner_code} registers 'https://WWW.Globex.com/' = key {dup.conflict_key} "
            f"-> {self.reg_state(dup)}"
        )
        self.at(2, 9, 30)
        self.execute(
            RejectRegistration(
                command_id=self.cid("reject-contoso-globex"),
                actor=CAROL,
                registration_id=dup.id,
                reason=RejectionReason.DUPLICATE,
                note="registered first by another partner",
            )
        )
        dup = self.ledger.get_registration(dup.id)
        reason = dup.rejection_reason.value if dup.rejection_reason else "-"
        self.say(
            f"carol rejects {dup.partner_code}'s registration -> {dup.status.value} ({reason})"
        )

        # A near-duplicate (same company, another subdomain): reviewed, then approved.
        self.at(2, 11)
        near = self.submitted(
            SubmitRegistration(
                command_id=self.cid("fabrikam-eu-globex"),
                actor=self.partner_actor("fabrikam"),
                partner_code=self.code("fabrikam"),
                customer=CustomerIn(
                    name="Globex Corporation GmbH", domain="eu.globex.com", country="DE"
                ),
                product_line=analytics,
                estimated_value=MoneyIn(amount=Decimal("60000"), currency="USD"),
                expected_close=self.close_date(100),
            )
        )
        self.expect("near_duplicate" in near.review_reasons, "eu.globex.com is a near-duplicate")
        self.say(f"{near.partner_code} registers {near.customer.domain} -> {self.reg_state(near)}")
        self.at(3, 10)
        self.execute(
            ApproveRegistration(
                command_id=self.cid("approve-fabrikam-eu-globex"),
                actor=CAROL,
                registration_id=near.id,
                note="separate EU subsidiary with its own budget",
            )
        )
        near = self.ledger.get_registration(near.id)
        self.say(f"carol approves the EU subsidiary -> {self.reg_state(near)}")

        # High value: review, action requested, resubmitted, approved.
        self.at(3, 15, 20)
        initech_customer = CustomerIn(name="Initech GmbH", domain="initech.de", country="DE")
        initech = self.submitted(
            SubmitRegistration(
                command_id=self.cid("contoso-initech"),
                actor=self.partner_actor("contoso"),
                partner_code=self.code("contoso"),
                customer=initech_customer,
                product_line=self.product("Data Platform"),
                estimated_value=MoneyIn(amount=Decimal("420000"), currency="EUR"),
                expected_close=self.close_date(70),
            )
        )
        self.say(
            f"{initech.partner_code} registers {initech.customer.domain} / "
            f"{initech.product_line} ({initech.estimated_value}) -> {self.reg_state(initech)}"
        )
        self.at(4, 9, 45)
        self.execute(
            RequestRegistrationInfo(
                command_id=self.cid("info-initech"),
                actor=CAROL,
                registration_id=initech.id,
                note="attach the budget approval and confirm the close date",
            )
        )
        initech = self.ledger.get_registration(initech.id)
        self.say(f"carol asks: '{initech.decision_note}' -> {initech.status.value}")
        self.at(7, 13, 10)
        self.execute(
            ResubmitRegistration(
                command_id=self.cid("resubmit-initech"),
                actor=self.partner_actor("contoso"),
                registration_id=initech.id,
                customer=initech_customer,
                estimated_value=MoneyIn(amount=Decimal("380000"), currency="EUR"),
                expected_close=self.close_date(84),
                notes="budget approved by the CFO",
            )
        )
        initech = self.ledger.get_registration(initech.id)
        self.say(
            f"{initech.partner_code} resubmits at {initech.estimated_value}, closing "
            f"{initech.expected_close} -> {self.reg_state(initech)}"
        )
        self.at(8, 10)
        self.execute(
            ApproveRegistration(
                command_id=self.cid("approve-initech"), actor=CAROL, registration_id=initech.id
            )
        )
        initech = self.ledger.get_registration(initech.id)
        self.say(f"carol approves {initech.customer.domain} -> {self.reg_state(initech)}")

        # Protection extended once.
        self.at(8, 10, 5)
        self.execute(
            ExtendProtection(
                command_id=self.cid("extend-globex"), actor=CAROL, registration_id=globex.id
            )
        )
        globex = self.ledger.get_registration(globex.id)
        self.say(
            f"carol extends {globex.partner_code}'s {globex.customer.domain} protection to "
            f"{_when(globex.protected_until)} (extension {globex.extensions} of "
            f"{self.ledger.policy.max_extensions})"
        )
        return globex.id, initech.id

    def open_deals(self, globex_reg: UUID, initech_reg: UUID) -> tuple[UUID, UUID]:
        self.at(9, 9, 30)
        globex = self.opened(
            self.execute(
                ConvertRegistration(
                    command_id=self.cid("convert-globex"),
                    actor=SAM,
                    registration_id=globex_reg,
                    title="Globex analytics rollout",
                    owner="sam",
                    region="NA",
                )
            )
        )
        self.say(
            f"sam converts {globex.sourcing_partner}'s registration -> deal '{globex.title}' "
            f"({globex.stage}, {globex.amount})"
        )
        self.at(9, 9, 40)
        err = self.refused(
            OpenDeal(
                command_id=self.cid("direct-globex"),
                actor=SAM,
                title="Globex direct upsell",
                customer=CustomerIn(name="Globex", domain="www.globex.com", country="US"),
                product_line=self.product("Analytics Cloud"),
                amount=MoneyIn(amount=Decimal("50000"), currency="USD"),
                expected_close=self.close_date(60),
                owner="sam",
            ),
            "channel_conflict",
        )
        self.say(f"sam opens a direct deal on www.globex.com -> REFUSED {err.code}: {err.message}")
        self.at(9, 11)
        initech = self.opened(
            self.execute(
                ConvertRegistration(
                    command_id=self.cid("convert-initech"),
                    actor=SAM,
                    registration_id=initech_reg,
                    title="Initech data platform",
                    owner="sam",
                    region="EMEA",
                )
            )
        )
        self.say(
            f"sam converts {initech.sourcing_partner}'s registration -> deal '{initech.title}' "
            f"({initech.stage}, {initech.amount})"
        )
        self.at(10, 14)
        self.execute(
            AttachPartner(
                command_id=self.cid("attach-contoso"),
                actor=SAM,
                deal_id=globex.id,
                partner_code=self.code("contoso"),
                role=PartnerRole.INFLUENCER,
            )
        )
        self.at(10, 14, 5)
        self.execute(
            SetAttribution(
                command_id=self.cid("split-globex"),
                actor=SAM,
                deal_id=globex.id,
                shares={self.code("northwind"): Decimal("70"), self.code("contoso"): Decimal("30")},
            )
        )
        globex = self.ledger.get_deal(globex.id)
        split = " / ".join(
            f"{p} {_pct(globex.shares[p])} ({globex.partners[p].value})" for p in globex.partners
        )
        self.say(f"sam attaches an influencer and sets the split: {split}")
        return globex.id, initech.id

    def move(self, deal_id: UUID, stage: str, name: str, reason: str = "") -> None:
        before = self.ledger.get_deal(deal_id)
        self.execute(
            MoveDealStage(
                command_id=self.cid(name), actor=SAM, deal_id=deal_id, stage=stage, reason=reason
            )
        )
        after = self.ledger.get_deal(deal_id)
        why = f" ({reason})" if reason else ""
        self.say(
            f"{after.title}: {before.stage} -> {after.stage} {_pct(after.probability)}, "
            f"weighted {after.weighted_amount.amount:,.2f} {after.amount.currency}{why}"
        )

    def work_deals(self, globex_id: UUID, initech_id: UUID) -> None:
        self.at(15, 10)
        self.move(globex_id, "qualified", "globex-qualified", "budget confirmed")
        self.at(15, 10, 30)
        self.move(initech_id, "qualified", "initech-qualified")
        self.at(22, 16)
        self.move(initech_id, "proposal", "initech-proposal", "proposal sent")
        self.at(29, 11)
        self.move(globex_id, "proposal", "globex-proposal")

        self.at(30, 9)
        out = self.execute(
            RequestSupport(
                command_id=self.cid("support-globex"),
                actor=self.partner_actor("northwind"),
                deal_id=globex_id,
                kind=SupportKind.PRESALES,
                note="need a solution architect for the data-residency workshop",
            )
        )
        request_id = str(out.result["request_id"])
        ticket = self.ledger.get_deal(globex_id).support[request_id]
        self.say(
            f"{self.code('northwind')} requests {ticket['kind']} support -> {ticket['status']}"
        )
        self.at(31, 10)
        self.execute(
            AssignSupport(
                command_id=self.cid("assign-support"),
                actor=SAM,
                deal_id=globex_id,
                request_id=request_id,
                assignee="priya",
            )
        )
        ticket = self.ledger.get_deal(globex_id).support[request_id]
        self.say(f"support {request_id} -> {ticket['status']} to {ticket['assignee']}")
        self.at(33, 17)
        self.execute(
            ResolveSupport(
                command_id=self.cid("resolve-support"),
                actor=SAM,
                deal_id=globex_id,
                request_id=request_id,
                resolution="workshop held; EU hosting confirmed",
            )
        )
        ticket = self.ledger.get_deal(globex_id).support[request_id]
        self.say(f"support {request_id} -> {ticket['status']}: {ticket['resolution']}")

        self.at(36, 12)
        self.execute(
            ReviseDealAmount(
                command_id=self.cid("revise-globex"),
                actor=SAM,
                deal_id=globex_id,
                amount=MoneyIn(amount=Decimal("212345.67"), currency="USD"),
                reason="scope grew to three business units",
            )
        )
        self.say(f"sam revises the Globex amount to {self.ledger.get_deal(globex_id).amount}")
        self.at(43, 15)
        self.move(globex_id, "negotiation", "globex-negotiation")
        self.at(56, 10)
        self.move(globex_id, "committed", "globex-committed", "verbal yes")

        self.at(64, 16)
        self.execute(MarkDealWon(command_id=self.cid("win-globex"), actor=SAM, deal_id=globex_id))
        won = self.ledger.get_deal(globex_id)
        total = sum((m.amount for m in won.attributed.values()), Decimal(0))
        self.expect(won.status is DealStatus.WON, "the Globex deal should be won")
        self.expect(total == won.amount.amount, "attributed revenue must sum to the amount")
        self.say(f"{won.title}: {won.status.value.upper()} at {won.amount}; attributed revenue:")
        width = max(len(p) for p in won.attributed)
        for partner, money in won.attributed.items():
            print(
                f"{'':{_INDENT}}{partner:<{width}}  {_pct(won.shares[partner]):>4}  "
                f"{money.amount:>12,.2f} {money.currency}"
            )
        print(f"{'':{_INDENT}}{'total':<{width}}  {'':>4}  {total:>12,.2f} {won.amount.currency}")

        self.at(74, 11)
        self.execute(
            MarkDealLost(
                command_id=self.cid("lose-initech"),
                actor=SAM,
                deal_id=initech_id,
                reason=LossReason.COMPETITOR,
                competitor="Hooli",
                note="lost on price of the managed tier",
            )
        )
        lost = self.ledger.get_deal(initech_id)
        reason = lost.loss_reason.value if lost.loss_reason else "-"
        self.say(
            f"{lost.title}: {lost.status.value.upper()} (reason {reason}, "
            f"competitor {lost.competitor})"
        )

    def resend(self, initech_id: UUID) -> None:
        """Re-send an earlier command with the same id: first outcome, nothing written."""
        self.at(74, 11, 30)
        before = self.ledger.recorder.max_notification_id() or 0
        out = self.execute(
            MoveDealStage(
                command_id=self.cid("initech-proposal"),
                actor=SAM,
                deal_id=initech_id,
                stage="proposal",
                reason="proposal sent",
            )
        )
        after = self.ledger.recorder.max_notification_id() or 0
        self.expect(out.replayed and after == before, "a re-sent command must write nothing")
        self.say(
            f"re-sending {out.command_type} {out.command_id} -> replayed={out.replayed}, "
            f"{after - before} new events (the deal is {self.ledger.get_deal(initech_id).status})"
        )

    def sweep(self) -> None:
        self.at(105, 2)
        out = self.execute(ExpireProtections(command_id=self.cid("sweep"), actor=CAROL))
        swept = [self.ledger.get_registration(UUID(r)) for r in out.result["expired"]]
        mine = [r for r in swept if r.product_line == self.product("analytics cloud")]
        self.expect(len(mine) == 1, f"the sweep should end one protection of this run, not {mine}")
        for reg in mine:
            self.say(
                f"sweeper: {reg.partner_code}'s {reg.customer.domain} protection (until "
                f"{_when(reg.protected_until)}) -> registration {reg.status.value}"
            )
        if len(swept) > len(mine):
            self.say(f"sweeper: also ended {len(swept) - len(mine)} protection(s) of earlier runs")
        self.at(105, 9, 15)
        freed = self.submitted(
            SubmitRegistration(
                command_id=self.cid("contoso-eu-globex"),
                actor=self.partner_actor("contoso"),
                partner_code=self.code("contoso"),
                customer=CustomerIn(
                    name="Globex Corporation GmbH", domain="eu.globex.com", country="DE"
                ),
                product_line=self.product("Analytics Cloud"),
                estimated_value=MoneyIn(amount=Decimal("75000"), currency="USD"),
                expected_close=self.close_date(160),
            )
        )
        self.expect(freed.approved_automatically, "the freed key should be auto-approved")
        self.say(
            f"{freed.partner_code} registers the freed {freed.customer.domain} -> "
            f"{self.reg_state(freed)}"
        )
        self.open_pipeline(freed.id)

    def open_pipeline(self, registration_id: UUID) -> None:
        """Leave some deals open, so the pipeline read model has something to show."""
        self.at(106, 10)
        converted = self.execute(
            ConvertRegistration(
                command_id=self.cid("convert-eu-globex"),
                actor=SAM,
                registration_id=registration_id,
                title="Globex EU analytics",
                owner="sam",
                region="EMEA",
                stage="qualified",
            )
        )
        if converted.aggregate_id is None:
            raise DemoFailed("a conversion named no deal")
        deal = self.ledger.get_deal(converted.aggregate_id)
        self.say(f"sam converts it -> deal '{deal.title}' ({deal.stage}, {deal.amount})")
        self.at(106, 11)
        direct = self.execute(
            OpenDeal(
                command_id=self.cid("direct-hooli"),
                actor=SAM,
                title="Hooli security suite",
                customer=CustomerIn(name="Hooli", domain="hooli.co.uk", country="GB"),
                product_line=self.product("Security"),
                amount=MoneyIn(amount=Decimal("120000"), currency="GBP"),
                expected_close=self.close_date(180),
                owner="ana",
                region="EMEA",
                stage="proposal",
            )
        )
        if direct.aggregate_id is None:
            raise DemoFailed("OpenDeal named no deal")
        deal = self.ledger.get_deal(direct.aggregate_id)
        self.say(f"ana opens a direct deal '{deal.title}' ({deal.stage}, {deal.amount})")


# -- the report ----------------------------------------------------------------------


def _registration_row(reg: Registration, history: _History, now: datetime) -> list[Cell]:
    status = reg.status.value
    if reg.status is RegistrationStatus.APPROVED:
        status += " (auto)" if reg.approved_automatically else " (review)"
    elif reg.rejection_reason is not None:
        status += f": {reg.rejection_reason.value}"
    released = history.releases.get(reg.id)
    protection: list[str] = []
    if released is not None:
        protection = [f"ended {_day(released[0])}", f"({released[1]})"]
    elif reg.protected_until is not None and reg.protected_until > now:
        protection = [f"until {_day(reg.protected_until)}"]
    if reg.extensions:
        protection.append(f"extended x{reg.extensions}")
    return [
        _short(reg.id),
        reg.partner_code,
        reg.customer.domain,
        reg.product_line,
        status,
        protection or ["-"],
        history.review_reasons.get(reg.id) or ["-"],
    ]


def _deal_row(deal: Deal) -> list[Cell]:
    state: Cell
    if deal.status is DealStatus.OPEN:
        state = f"{deal.stage} ({_pct(deal.probability)})"
    elif deal.status is DealStatus.LOST:
        reason = deal.loss_reason.value if deal.loss_reason else "-"
        state = [f"lost: {reason}"] + ([f"to {deal.competitor}"] if deal.competitor else [])
    else:
        state = deal.status.value
    partners = [
        f"{p} {_pct(deal.shares.get(p, Decimal(0)))} {role.value}"
        + (" (sourcing)" if p == deal.sourcing_partner else "")
        for p, role in deal.partners.items()
    ]
    attributed = [f"{p} {m}" for p, m in deal.attributed.items()] or ["-"]
    return [deal.title, state, str(deal.amount), partners or ["-"], attributed]


def _print_report(ledger: DealLedger, prefix: str, now: datetime, run: int) -> int:
    history = _read_history(ledger, prefix)
    scope = "" if run == 1 else f" (run {run})"
    partners: list[list[Cell]] = []
    for code in history.partners:
        partner = ledger.get_partner(code)
        standing = f"suspended: {partner.suspension_reason}" if partner.suspended else "active"
        partners.append(
            [partner.code, partner.name, partner.tier.value, ", ".join(partner.regions), standing]
        )
    registrations = [
        _registration_row(ledger.get_registration(rid), history, now)
        for rid in history.registrations
    ]
    deals = [_deal_row(ledger.get_deal(did)) for did in history.deals]
    blocks = [
        format_table(f"PARTNERS{scope}", ["code", "name", "tier", "regions", "standing"], partners),
        format_table(
            f"REGISTRATIONS{scope} as of {_when(now)}",
            ["id", "partner", "customer", "product line", "status", "protection", "review reasons"],
            registrations,
        ),
        format_table(
            f"DEALS{scope}",
            ["title", "stage/status", "amount", "partners", "attributed revenue"],
            deals,
        ),
    ]
    for block in blocks:
        print()
        print("\n".join(block))
    return history.events


# -- entry point --------------------------------------------------------------------


def _remove_store(path: Path) -> None:
    """The event store and the read models fed from it go together."""
    from infra.store.databases import read_model_path

    for store in (path, read_model_path(path)):
        for suffix in ("", "-wal", "-shm", "-journal"):
            store.with_name(store.name + suffix).unlink(missing_ok=True)


def is_demo_store(path: Path) -> bool:
    """Whether the demo created this SQLite file (read without changing it)."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            return bool(
                conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (DEMO_MARKER,),
                ).fetchone()[0]
            )
    except sqlite3.DatabaseError:
        return False


def _mark_demo_store(path: Path) -> None:
    import sqlite3
    from contextlib import closing

    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {DEMO_MARKER} (created_at TEXT NOT NULL)")
        conn.execute(f"INSERT INTO {DEMO_MARKER} VALUES (?)", (datetime.now(UTC).isoformat(),))


def _claim_store(path: Path, *, fresh: bool, force: bool) -> None:
    """Refuse a store the demo did not create (unless forced); make way for a fresh run."""
    from infra.store.databases import read_model_path

    if path.exists() and not force and not is_demo_store(path):
        raise DemoRefused(
            f"{path} was not created by the demo; it may hold real data. Name another "
            "path with --store, or pass --force to "
            + ("add to it anyway." if not fresh else "delete and replace it.")
        )
    orphan = read_model_path(path)
    if not path.exists() and orphan.exists() and not force:
        raise DemoRefused(
            f"{orphan} exists without its event store {path}; remove it, name another "
            "path with --store, or pass --force"
        )
    if fresh:
        _remove_store(path)
    if not path.exists():
        _mark_demo_store(path)


def _previous_runs(ledger: DealLedger) -> tuple[int, datetime | None]:
    """How many demo runs the store already holds, and when its last event happened."""
    runs = 0
    last: datetime | None = None
    for event in stored_events(ledger):
        if isinstance(event, Partner.Onboarded) and _command_id(event).startswith("demo"):
            runs += _command_id(event).endswith(":onboard-northwind")
        stamp = getattr(event, "timestamp", None)
        if isinstance(stamp, datetime):
            last = stamp if last is None else max(last, stamp)
    return runs, last


def run_demo(settings: Settings, store: Path, *, fresh: bool = True, force: bool = False) -> int:
    """Run the scripted scenario on the demo's SQLite store; 0 when it went as told.

    Raises `DemoRefused`, before touching anything, when `store` exists and the demo
    did not create it, unless `force`."""
    if settings.uses_postgres:
        print("The demo always runs on an embedded SQLite store; DATABASE_URL is ignored.")
    path = store.resolve()
    settings = settings.model_copy(
        update={"database_url": None, "kafka_bootstrap": None, "sqlite_path": path}
    )
    _claim_store(path, fresh=fresh, force=force)
    if fresh:
        print(f"Deal Ledger demo on a fresh embedded store: {path}")
    else:
        print(f"Deal Ledger demo, appending to the embedded store: {path}")

    probe = Wiring(settings)
    try:
        runs, last = _previous_runs(probe.ledger())
    finally:
        probe.close()
    start = DEMO_START
    if last is not None and last >= start:
        start = datetime.combine(last.date() + timedelta(days=1), DEMO_START.timetz())
    run = runs + 1
    if run > 1:
        print(f"Run {run}: codes and product lines end in r{run}; the clock starts {_when(start)}")
    print("Actors: carol (channel manager), sam (sales), and the partners themselves.")

    clock = ManualClock(start)
    wiring = Wiring(settings, clock=clock)
    try:
        ledger = wiring.ledger()
        scenario = _Scenario(ledger, clock, run)
        try:
            scenario.play()
            events = _print_report(ledger, scenario.prefix, clock.now(), run)
        except DemoFailed as exc:
            print(f"DEMO FAILED: {exc}")
            return 1
        print()
        print(f"{events} events stored in {path} (counted by reading the store back)")
        _print_read_models(wiring, clock.now())
        _print_api_example(wiring)
    finally:
        wiring.close()
    return 0


def _money_by_currency(amounts: dict[str, Decimal]) -> str:
    return ", ".join(f"{amount:,.2f} {cur}" for cur, amount in sorted(amounts.items())) or "-"


def _print_read_models(wiring: Wiring, now: datetime) -> None:
    """Embedded mode: the projectors are fed in-process from the notification log."""
    from consumers.embedded_feed import feed, open_read_store
    from infra.store.databases import read_model_path
    from projections.attribution import partner_attribution
    from projections.pipeline import pipeline_rows, pipeline_totals
    from projections.registration_queue import review_queue

    path = read_model_path(wiring.settings.sqlite_path.resolve())
    ledger = wiring.ledger()
    conn, store = open_read_store(path)
    try:
        fed = feed(ledger, store)
        rows = pipeline_rows(store, now=now)
        pipeline = [
            [
                r.title,
                r.stage,
                f"{r.amount:,.2f} {r.currency}",
                f"{r.weighted_amount:,.2f} {r.currency}",
                ", ".join(p for p in [r.sourcing_partner, *r.influencing_partners] if p) or "-",
                r.region,
                str(r.days_in_stage),
            ]
            for r in rows
        ]
        totals = [
            [
                t.key or "-",
                t.currency,
                f"{t.amount:,.2f}",
                f"{t.weighted_amount:,.2f}",
                str(t.deals),
            ]
            for t in pipeline_totals(store, "stage")
        ]
        attribution = [
            [
                a.partner_code,
                _money_by_currency(a.sourced_pipeline),
                _money_by_currency(a.influenced_pipeline),
                _money_by_currency(a.won_revenue),
                f"{a.deals_won}/{a.deals_lost}",
                "-" if a.win_rate is None else f"{a.win_rate * 100:.0f}%",
                "-" if a.average_sales_cycle_days is None else f"{a.average_sales_cycle_days}",
            ]
            for a in partner_attribution(store)
        ]
        queue = review_queue(store, now=now, sla_hours=wiring.settings.approval_sla_hours)
    finally:
        conn.close()
    print()
    print(f"READ MODELS, fed in-process from the notification log ({fed} events) into {path}")
    blocks = [
        format_table(
            "PIPELINE (open deals)",
            ["deal", "stage", "amount", "weighted", "partners", "region", "days in stage"],
            pipeline,
        ),
        format_table(
            "PIPELINE TOTALS by stage and currency (never converted)",
            ["stage", "currency", "amount", "weighted", "deals"],
            totals,
        ),
        format_table(
            "PARTNER ATTRIBUTION",
            [
                "partner",
                "sourced open",
                "influenced open",
                "won revenue",
                "won/lost",
                "win rate",
                "avg cycle days",
            ],
            attribution,
        ),
    ]
    for block in blocks:
        print()
        print("\n".join(block))
    print()
    print(f"Review queue: {len(queue)} registration(s) awaiting review")


# -- the HTTP API on this store -------------------------------------------------------------


def _print_api_example(wiring: Wiring) -> None:
    """Keys for carol and a partner, and curl lines that work against `dealledger serve`."""
    keys = wiring.key_store()
    carol = keys.create(Actor.user("carol", Role.CHANNEL_MANAGER), "demo")
    northwind = keys.create(Actor.partner("northwind"), "demo")
    path = wiring.settings.sqlite_path.resolve()
    base = "http://127.0.0.1:8000"
    print()
    print(
        f"HTTP API on this store: DEALLEDGER_SQLITE_PATH={path} .venv/bin/dealledger serve"
        f"   (OpenAPI: {base}/docs)"
    )
    print("then, as carol (channel manager) and as partner northwind (sees only its own):")
    print(f"  curl -s -H 'Authorization: Bearer {carol}' '{base}/v1/pipeline?group_by=partner'")
    print(f"  curl -s -H 'Authorization: Bearer {carol}' '{base}/v1/review-queue'")
    print(f"  curl -s -H 'X-API-Key: {northwind}' '{base}/v1/registrations'")
