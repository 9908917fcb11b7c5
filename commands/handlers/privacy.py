"""Personal-data commands: erasure is recorded here; its keys are destroyed by the
ledger once the record is saved (commands/ledger.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from commands.models import EraseDataSubject
from commands.unit_of_work import UnitOfWork
from domain.permissions import MANAGERS, actor_must_have_role
from domain.privacy import DataSubject, data_subject_id, subject_named

Result = tuple[UUID | None, dict[str, Any]]


def erase_data_subject(cmd: EraseDataSubject, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "erase a data subject's personal data")
    subject = subject_named(cmd.subject)
    record = uow.find(DataSubject, data_subject_id(subject))
    if record is None:
        record = uow.add(DataSubject.erase(subject, uow.cause, uow.now))
    else:
        record.erase_again(uow.cause, uow.now)
    return record.id, {"subject": subject}


HANDLERS: dict[type, Any] = {EraseDataSubject: erase_data_subject}
