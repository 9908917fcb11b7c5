"""Personal data in the ledger: which fields hold it, whose it is, and its erasure.

A *data subject* is the customer a registration or deal is about, named by its
normalised domain (`customer.example`): notes and reasons written about a deal are
about the people at that customer, and cannot be told apart from one another. Each
event class names its personal fields (`personal_fields`), each aggregate the parts
of its state that hold them (`personal_state`, for snapshots); the event store keeps
those fields encrypted under a key of the stream's data subject, and erasing the
subject destroys its keys (docs/privacy.md).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.base import LedgerAggregate
from domain.errors import InvalidInput
from domain.ids import NAMESPACE
from domain.normalise import normalise_domain
from domain.values import Cause

# What a personal field reads as once its subject is erased.
ERASED = "[erased]"
# What the events topic carries in place of a personal field that still exists: the
# text is served by the API only, to those allowed to read the deal.
WITHHELD = "[personal]"


def subject_named(text: str) -> str:
    """`Buyer@Customer.example` or `https://www.customer.example` -> `customer.example`."""
    try:
        return normalise_domain(text)
    except InvalidInput:
        raise InvalidInput(
            f"{text!r} names no data subject: give the customer's domain "
            "(customer.example) or an address at it",
            field="subject",
        ) from None


def data_subject_id(subject: str) -> UUID:
    return uuid5(NAMESPACE, f"data-subject:{subject}")


class DataSubject(LedgerAggregate):
    """The record of what was done to one subject's personal data: its erasures, each
    naming the keys it destroys (those live when it was recorded; a key made later, for
    text written since, is left to the next erasure)."""

    class Erased(LedgerAggregate.Created):
        subject: str
        keys: list[UUID]

    class ErasedAgain(LedgerAggregate.Event):
        """Erasing again destroys the keys made since (text written after the last)."""

        keys: list[UUID]

    def __init__(self, subject: str, keys: list[UUID], cause: Cause) -> None:
        self.subject = subject
        self.erased_keys = list(keys)

    @classmethod
    def erase(cls, subject: str, keys: list[UUID], cause: Cause, at: datetime) -> DataSubject:
        record: DataSubject = cls._start(
            cls.Erased,
            at,
            id=data_subject_id(subject),
            subject=subject,
            keys=sorted(keys),
            cause=cause,
        )
        return record

    def erase_again(self, keys: list[UUID], cause: Cause, at: datetime) -> None:
        self._erase_again(keys=sorted(keys), cause=cause, timestamp=at)

    @event(ErasedAgain)
    def _erase_again(self, keys: list[UUID], cause: Cause, timestamp: datetime) -> None:
        self.erased_keys += keys
