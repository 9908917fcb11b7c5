"""Commands that would touch the same aggregates take turns within a process.

Optimistic concurrency decides every race between processes, but inside one process
(an API's workers, the command consumer's partition workers) racing is waste: two
submissions for one customer both load its protection, one of them loses at save and
runs again, and under a burst on one key most attempts lose. So each command names the
aggregates it is about to contend for, and holds their turns (striped locks, always
taken in one order, so two commands never wait on each other) while it runs. Commands
on different aggregates still run, and commit, side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from commands.models import Command
from commands.unit_of_work import index_entries
from domain.ids import partner_id, protection_id
from domain.normalise import conflict_key

STRIPES = 1024


def contended(command: Command) -> list[UUID]:
    """The aggregates `command` will change that other commands may change too."""
    ids: list[UUID] = []
    customer = getattr(command, "customer", None)
    product_line = getattr(command, "product_line", None)
    if customer is not None and isinstance(product_line, str):
        try:
            found = customer.to_domain()
        except Exception:  # the handler refuses it with the proper error
            found = None
        if found is not None:
            ids.append(protection_id(conflict_key(found.domain, product_line)))
            ids.extend(index_id for _, _, index_id in index_entries(found, product_line))
    for name in ("registration_id", "deal_id"):
        value = getattr(command, name, None)
        if isinstance(value, UUID):
            ids.append(value)
    code = getattr(command, "partner_code", None)
    if not ids and isinstance(code, str):
        ids.append(partner_id(code))
    return ids


class Turns:
    def __init__(self, stripes: int = STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def taken(self, aggregate_ids: list[UUID]) -> Iterator[None]:
        stripes = sorted({aggregate_id.int % len(self._locks) for aggregate_id in aggregate_ids})
        for stripe in stripes:
            self._locks[stripe].acquire()
        try:
            yield
        finally:
            for stripe in reversed(stripes):
                self._locks[stripe].release()
