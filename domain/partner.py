"""Partner: onboarded with a tier and regions; a suspended partner cannot register."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import event

from domain.base import LedgerAggregate
from domain.errors import IllegalTransition, InvalidInput, PartnerNotInGoodStanding
from domain.ids import partner_id
from domain.values import Cause, LedgerEnum


class PartnerTier(LedgerEnum):
    REGISTERED = "registered"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


class Partner(LedgerAggregate):
    class Onboarded(LedgerAggregate.Created):
        """v2 added `regions`; v1 events are upcast with an empty region list."""

        class_version = 2
        code: str
        name: str
        tier: PartnerTier
        regions: list[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["regions"] = []

    class TierChanged(LedgerAggregate.Event):
        tier: PartnerTier

    class Suspended(LedgerAggregate.Event):
        reason: str

    class Reinstated(LedgerAggregate.Event):
        pass

    def __init__(
        self, code: str, name: str, tier: PartnerTier, regions: list[str], cause: Cause
    ) -> None:
        self.code = code
        self.name = name
        self.tier = PartnerTier(tier)
        self.regions = sorted(regions)
        self.suspended = False
        self.suspension_reason = ""

    @classmethod
    def onboard(
        cls,
        code: str,
        name: str,
        tier: PartnerTier,
        regions: list[str],
        cause: Cause,
        at: datetime,
    ) -> Partner:
        if not code.strip() or not name.strip():
            raise InvalidInput("partner code and name must not be blank", field="code")
        partner: Partner = cls._start(
            cls.Onboarded,
            at,
            id=partner_id(code),
            code=code,
            name=name.strip(),
            tier=PartnerTier(tier),
            regions=sorted({r.strip() for r in regions if r.strip()}),
            cause=cause,
        )
        return partner

    @property
    def in_good_standing(self) -> bool:
        return not self.suspended

    def must_be_in_good_standing(self) -> None:
        if self.suspended:
            raise PartnerNotInGoodStanding(
                f"partner {self.code} is suspended ({self.suspension_reason})",
                partner=self.code,
            )

    def change_tier(self, tier: PartnerTier, cause: Cause, at: datetime) -> None:
        if PartnerTier(tier) == self.tier:
            raise IllegalTransition(f"partner {self.code} is already {self.tier.value}")
        self._change_tier(tier=PartnerTier(tier), cause=cause, timestamp=at)

    @event(TierChanged)
    def _change_tier(self, tier: PartnerTier, cause: Cause, timestamp: datetime) -> None:
        self.tier = PartnerTier(tier)

    def suspend(self, reason: str, cause: Cause, at: datetime) -> None:
        if self.suspended:
            raise IllegalTransition(f"partner {self.code} is already suspended")
        if not reason.strip():
            raise InvalidInput("a suspension needs a reason", field="reason")
        self._suspend(reason=reason.strip(), cause=cause, timestamp=at)

    @event(Suspended)
    def _suspend(self, reason: str, cause: Cause, timestamp: datetime) -> None:
        self.suspended = True
        self.suspension_reason = reason

    def reinstate(self, cause: Cause, at: datetime) -> None:
        if not self.suspended:
            raise IllegalTransition(f"partner {self.code} is not suspended")
        self._reinstate(cause=cause, timestamp=at)

    @event(Reinstated)
    def _reinstate(self, cause: Cause, timestamp: datetime) -> None:
        self.suspended = False
        self.suspension_reason = ""
