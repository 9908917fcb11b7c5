"""The demo's story: a partner programme's first months, told through the write side.

Every step issues commands through `DealLedger.execute`, in order, on a hand-moved
clock, then reads the aggregates back and records what happened in words. Nothing
here prints and nothing here checks the story: `DemoRun` holds what the ledger
answered to each command and the steps as told; the demo's tests assert the story
(tests/unit/test_demo.py) and `infra.demo.render` shows it.

Run 1 uses plain partner codes and product lines; a later run on the same store
(`dealledger demo --keep`) suffixes them with its number, so the same rules play out
again without meeting the earlier run's registrations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

from commands.ledger import DealLedger
from commands.models import (
    ActorIn,
    AddDealNote,
    ApproveRegistration,
    AssignSupport,
    AttachPartner,
    Command,
    ContactIn,
    ConvertRegistration,
    CustomerIn,
    EraseDataSubject,
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
from domain.deal import Deal, LossReason, PartnerRole, SupportKind
from domain.errors import DomainError
from domain.partner import PartnerTier
from domain.registration import Registration, RegistrationStatus, RejectionReason
from domain.values import Actor, Role
from infra.demo.formats import pct, when

CAROL = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
SAM = ActorIn.of(Actor.user("sam", Role.SALES))

# A line of a step's breakdown: label, share, amount, currency.
BreakdownLine = tuple[str, str, Decimal, str]


@dataclass(frozen=True)
class Step:
    """One step of the story, told from the state read back after it."""

    at: datetime
    text: str
    breakdown: Sequence[BreakdownLine] = ()


@dataclass
class DemoRun:
    """What happened in one run of the story."""

    run: int
    prefix: str  # every command id of this run starts with it
    steps: list[Step] = field(default_factory=list)
    # What the ledger answered to each command, by the command's name in the run
    # (its id without the prefix): an Outcome, or the DomainError that refused it. A
    # command re-sent under the same id keeps its latest answer.
    answers: dict[str, Outcome | DomainError] = field(default_factory=dict)

    def outcome(self, name: str) -> Outcome:
        answer = self.answers[name]
        if isinstance(answer, DomainError):
            raise answer
        return answer

    def refusal(self, name: str) -> DomainError | None:
        answer = self.answers[name]
        return answer if isinstance(answer, DomainError) else None


def refusal(err: DomainError | None) -> str:
    return "accepted" if err is None else f"REFUSED {err.code}: {err.message}"


class Scenario:
    """The story, told through `ledger.execute` and read back after every step.

    `on_step`, when given, hears each step as it is told (the demo prints it then)."""

    def __init__(
        self,
        ledger: DealLedger,
        clock: ManualClock,
        run: int,
        on_step: Callable[[Step], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.run = run
        self.day0 = clock.now().date()
        self.prefix = "demo:" if run == 1 else f"demo-r{run}:"
        self.suffix = "" if run == 1 else f"-r{run}"
        self.on_step = on_step
        self.told = DemoRun(run=run, prefix=self.prefix)

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

    def say(self, text: str, *, breakdown: Sequence[BreakdownLine] = ()) -> None:
        step = Step(at=self.clock.now(), text=text, breakdown=breakdown)
        self.told.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def _name(self, command: Command) -> str:
        return command.command_id.removeprefix(self.prefix)

    def execute(self, command: Command) -> Outcome:
        """A command the story needs accepted: a refusal ends the story (it raises)."""
        outcome = self.ledger.execute(command)
        self.told.answers[self._name(command)] = outcome
        return outcome

    def attempt(self, command: Command) -> DomainError | None:
        """A command the rules should refuse: returns the refusal (None if accepted)."""
        try:
            self.told.answers[self._name(command)] = self.ledger.execute(command)
        except DomainError as exc:
            self.told.answers[self._name(command)] = exc
            return exc
        return None

    def submitted(self, command: SubmitRegistration) -> Registration:
        return self.ledger.get_registration(_named(self.execute(command)))

    def opened(self, outcome: Outcome) -> Deal:
        return self.ledger.get_deal(_named(outcome))

    @staticmethod
    def reg_state(reg: Registration) -> str:
        state = reg.status.value
        if reg.status is RegistrationStatus.APPROVED:
            how = "auto" if reg.approved_automatically else "review"
            state += f" ({how}), protected until {when(reg.protected_until)}"
        elif reg.review_reasons:
            state += " [" + ", ".join(reg.review_reasons) + "]"
        return state

    # the story -------------------------------------------------------------

    def play(self) -> DemoRun:
        self.onboard_partners()
        globex, initech = self.registrations()
        globex_deal, initech_deal = self.open_deals(globex, initech)
        self.work_deals(globex_deal, initech_deal)
        self.resend(initech_deal)
        self.erase(initech_deal)
        self.sweep()
        return self.told

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
        self.say(f"carol suspends {tailspin.code}: {tailspin.suspension_reason}")
        self.at(0, 11, 45)
        err = self.attempt(
            SubmitRegistration(
                command_id=self.cid("tailspin-umbrella"),
                actor=self.partner_actor("tailspin"),
                partner_code=self.code("tailspin"),
                customer=CustomerIn(name="Umbrella Corp", domain="umbrella.com.br", country="BR"),
                product_line=self.product("Analytics Cloud"),
                estimated_value=MoneyIn(amount=Decimal("40000"), currency="USD"),
                expected_close=self.close_date(60),
            ),
        )
        self.say(f"{tailspin.code} registers umbrella.com.br -> {refusal(err)}")

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
                contact=ContactIn(
                    name="Bill Lumbergh", email="bill@initech.de", phone="+49 30 1234567"
                ),
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
            f"{when(globex.protected_until)} (extension {globex.extensions} of "
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
        err = self.attempt(
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
        )
        self.say(f"sam opens a direct deal on www.globex.com -> {refusal(err)}")
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
            f"{p} {pct(globex.shares[p])} ({globex.partners[p].value})" for p in globex.partners
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
            f"{after.title}: {before.stage} -> {after.stage} {pct(after.probability)}, "
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
        self.say(
            f"{won.title}: {won.status.value.upper()} at {won.amount}; attributed revenue:",
            breakdown=[
                *(
                    (partner, pct(won.shares[partner]), money.amount, money.currency)
                    for partner, money in won.attributed.items()
                ),
                ("total", "", total, won.amount.currency),
            ],
        )

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
        self.say(
            f"re-sending {out.command_type} {out.command_id} -> replayed={out.replayed}, "
            f"{after - before} new events (the deal is {self.ledger.get_deal(initech_id).status})"
        )

    def erase(self, initech_id: UUID) -> None:
        """Initech's buyer asks to be forgotten: its notes and reasons are crypto-shredded
        (docs/privacy.md); the events, and every hash over them, stay."""
        self.at(75, 9)
        out = self.execute(
            EraseDataSubject(
                command_id=self.cid("erase-initech"), actor=CAROL, subject="buyer@initech.de"
            )
        )
        registration_id = self.ledger.get_deal(initech_id).registration_id
        assert registration_id is not None
        contact = self.ledger.get_registration(registration_id).contact
        self.say(
            f"carol erases {out.result['subject']} on request: {len(out.result['keys'])} "
            f"data key(s) destroyed; the loss note now reads "
            f"{self._loss_note(initech_id)!r}, the contact {contact['name']!r}"
        )
        self.at(75, 10)
        self.execute(
            AddDealNote(
                command_id=self.cid("initech-note-after"),
                actor=SAM,
                deal_id=initech_id,
                text="their new CTO asked us back for Q3",
            )
        )
        self.execute(
            EraseDataSubject(
                command_id=self.cid("erase-initech-again"), actor=CAROL, subject="initech.de"
            )
        )
        self.say(
            "sam notes their new CTO asked us back; carol erases initech.de again -> the "
            f"note reads {self.ledger.deal_notes(initech_id)[-1]!r}"
        )

    def _loss_note(self, deal_id: UUID) -> str:
        lost = [e for e in self.ledger.events.get(deal_id) if isinstance(e, Deal.Lost)]
        return lost[-1].note

    def sweep(self) -> None:
        self.at(105, 2)
        out = self.execute(ExpireProtections(command_id=self.cid("sweep"), actor=CAROL))
        swept = [self.ledger.get_registration(UUID(r)) for r in out.result["expired"]]
        mine = [r for r in swept if r.product_line == self.product("analytics cloud")]
        for reg in mine:
            self.say(
                f"sweeper: {reg.partner_code}'s {reg.customer.domain} protection (until "
                f"{when(reg.protected_until)}) -> registration {reg.status.value}"
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
        deal = self.opened(converted)
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
        deal = self.opened(direct)
        self.say(f"ana opens a direct deal '{deal.title}' ({deal.stage}, {deal.amount})")


def _named(outcome: Outcome) -> UUID:
    """The aggregate a creating command made (the ledger names it in the outcome)."""
    if outcome.aggregate_id is None:
        raise LookupError(f"{outcome.command_type} {outcome.command_id} named no aggregate")
    return outcome.aggregate_id
