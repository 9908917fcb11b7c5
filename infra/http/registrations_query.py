"""Listing registrations from the registration-queue read model (`rm_registration`
holds every registration, whatever its status), paged by a keyset cursor.

(A query like this belongs in `projections.registration_queue`; it lives here until
it moves there.)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.errors import InvalidInput
from infra.http.responses import CustomerView, RegistrationRow
from infra.http.views import amount
from projections.store import (
    ReadStore,
    from_micros,
    parse_date,
    parse_optional_time,
    parse_time,
)

_COLUMNS = (
    "registration_id, partner_code, customer_name, customer_domain, customer_country, "
    "product_line, conflict_key, status, value_micros, currency, expected_close, "
    "review_reasons, submitted_at, status_changed_at, protected_until, rejection_reason, deal_id"
)


@dataclass(frozen=True)
class Page:
    rows: list[RegistrationRow]
    next_cursor: str | None


def encode_cursor(submitted_at: str, registration_id: str) -> str:
    raw = f"{submitted_at}|{registration_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        submitted_at, registration_id = raw.split("|")
        parse_time(submitted_at)
        UUID(registration_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None
    return submitted_at, registration_id


def list_registrations(
    store: ReadStore,
    *,
    statuses: Sequence[str] = (),
    partner: str | None = None,
    conflict_key: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """Registrations by submission time (then id), filtered, `limit` per page."""
    where: list[str] = []
    params: list[Any] = []
    if statuses:
        where.append(f"status IN ({', '.join(['%s'] * len(statuses))})")
        params.extend(statuses)
    if partner is not None:
        where.append("partner_code = %s")
        params.append(partner)
    if conflict_key is not None:
        where.append("conflict_key = %s")
        params.append(conflict_key)
    if cursor is not None:
        submitted_at, registration_id = decode_cursor(cursor)
        where.append("(submitted_at > %s OR (submitted_at = %s AND registration_id > %s))")
        params.extend([submitted_at, submitted_at, registration_id])
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = store.fetchall(
        f"SELECT {_COLUMNS} FROM rm_registration {clause}"
        f"ORDER BY submitted_at, registration_id LIMIT {int(limit) + 1}",
        params,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(str(rows[-1][12]), str(rows[-1][0])) if more and rows else None
    return Page([_row(r) for r in rows], next_cursor)


def _row(r: tuple[Any, ...]) -> RegistrationRow:
    return RegistrationRow(
        registration_id=UUID(str(r[0])),
        partner_code=r[1],
        customer=CustomerView(name=r[2], domain=r[3], country=r[4]),
        product_line=r[5],
        conflict_key=r[6],
        status=r[7],
        estimated_value=amount(from_micros(r[8], r[9]), r[9]),
        expected_close=parse_date(r[10]),
        review_reasons=[x for x in str(r[11]).split(",") if x],
        submitted_at=parse_time(r[12]),
        status_changed_at=parse_time(r[13]),
        protected_until=parse_optional_time(r[14]),
        rejection_reason=r[15],
        deal_id=None if r[16] is None else UUID(str(r[16])),
    )
