"""Commands built from a caller's fields, whatever carried them (an HTTP body and
path, a Kafka envelope's payload, a form).

The caller names only the command's own fields: `command_id` comes from its
idempotency key, `actor` from its principal and `correlation_id` from the
transport. Every problem is an `InvalidRequest` whose pydantic-style errors are
located under `where` (``body``, ``payload``), so each edge can point at the value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from commands import models as m
from commands.models import nul_at
from infra.gateway.problems import InvalidRequest

FROM_ELSEWHERE = ("command_id", "actor", "correlation_id")


def without_nul(value: Any, where: str = "body") -> None:
    """Raises ValueError naming where a NUL character is (PostgreSQL text holds none)."""
    found = nul_at(value, where)
    if found is not None:
        raise ValueError(f"{found} contains a NUL character")


def check_fields(fields: Mapping[str, Any], where: str) -> None:
    """Refuses fields the caller may not name, and NUL characters anywhere."""
    named = [name for name in FROM_ELSEWHERE if name in fields]
    if named:
        raise InvalidRequest(
            [
                {"loc": (where, name), "msg": f"{name} comes from the caller, not the payload",
                 "type": "extra_forbidden"}
                for name in named
            ]
        )  # fmt: skip
    try:
        without_nul(dict(fields), where)
    except ValueError as exc:
        raise InvalidRequest([{"loc": (where,), "msg": str(exc), "type": "value_error"}]) from None


def build(command: type[m.Command], fields: Mapping[str, Any], where: str) -> m.Command:
    try:
        return command(**fields)
    except ValidationError as exc:
        raise InvalidRequest(
            [{**e, "loc": (where, *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None


def missing(where: str, name: str, why: str) -> InvalidRequest:
    return InvalidRequest([{"loc": (where, name), "msg": why, "type": "missing"}])


class RequestBody(BaseModel):
    """Base of every request body: unknown members and NUL characters are refused
    (PostgreSQL text cannot hold NUL, so it would poison the read models)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        without_nul(data)
        return data


def body_model(
    command: type[m.Command],
    *,
    path_fields: Iterable[str] = (),
    optional: Iterable[str] = (),
    name: str | None = None,
) -> type[BaseModel] | None:
    """The payload model of `command`: its fields minus `command_id` (from the
    idempotency key), `actor` (from the principal) and `correlation_id` (from the
    transport), and minus `path_fields` (an HTTP path carries them); `optional`
    fields may be left out. None when no field is left. Unknown members, ``actor``
    included, are refused; the full command is validated again when built, so
    model-level validators still apply."""
    skip = {*FROM_ELSEWHERE, *path_fields}
    made_optional = set(optional)
    fields: dict[str, Any] = {}
    for field_name, info in command.model_fields.items():
        if field_name in skip:
            continue
        info = copy.copy(info)
        annotation: Any = info.annotation
        if field_name in made_optional:
            info = FieldInfo.merge_field_infos(info, default=None)
            annotation = annotation | None
        fields[field_name] = (annotation, info)
    if not fields:
        return None
    model: type[BaseModel] = create_model(
        name or f"{command.__name__}Body",
        __base__=RequestBody,
        __doc__=command.__doc__ if command.__doc__ != m.Command.__doc__ else None,
        **fields,
    )
    return model
