"""Personal-data commands: erasure is recorded here, naming the keys it destroys; the
ledger destroys them once the record is saved (commands/ledger.py)."""

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
    keys = uow.ledger.keyring.table.live_key_ids(subject)
    record = uow.find(DataSubject, data_subject_id(subject))
    if record is None:
        record = uow.add(DataSubject.erase(subject, keys, uow.cause, uow.now))
    else:
        record.erase_again(keys, uow.cause, uow.now)
    # The keys travel in the result, so a re-sent command destroys exactly these.
    return record.id, {"subject": subject, "keys": sorted(str(k) for k in keys)}


HANDLERS: dict[type, Any] = {EraseDataSubject: erase_data_subject}
