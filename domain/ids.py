"""Deterministic aggregate ids, so the write model can find aggregates by natural key."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6f1c1c57-2b4e-4c59-9a59-0c1d5e0d7a11")


def partner_id(partner_code: str) -> UUID:
    return uuid5(NAMESPACE, f"partner:{partner_code}")


def protection_id(conflict_key: str) -> UUID:
    return uuid5(NAMESPACE, f"protection:{conflict_key}")


def customer_index_id(kind: str, value: str, product_line: str) -> UUID:
    return uuid5(NAMESPACE, f"customer-index:{kind}:{value}|{product_line}")


def command_record_id(command_id: str) -> UUID:
    return uuid5(NAMESPACE, f"command:{command_id}")


def new_aggregate_id(kind: str, command_id: str) -> UUID:
    """An aggregate created by a command gets an id derived from that command's id."""
    return uuid5(NAMESPACE, f"{kind}:{command_id}")
