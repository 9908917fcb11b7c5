"""Request bodies derived from the command models, so the two never drift apart.

A body holds a command's fields minus `command_id` (from the Idempotency-Key
header), `actor` (from the authenticated principal) and `correlation_id` (from
X-Correlation-Id), and minus the fields the URL path carries. Unknown members,
``actor`` included, are refused. The full command is validated again when built,
so model-level validators still apply.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model, model_validator
from pydantic.fields import FieldInfo

from commands.models import Command
from infra.gateway.payloads import FROM_ELSEWHERE, without_nul


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
    command: type[Command],
    *,
    path_fields: Iterable[str] = (),
    optional: Iterable[str] = (),
    name: str | None = None,
) -> type[BaseModel] | None:
    """The request body model of `command`, or None when it has no body fields."""
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
        __doc__=command.__doc__ if command.__doc__ != Command.__doc__ else None,
        **fields,
    )
    return model


def path_field(command: type[Command], field_name: str) -> tuple[Any, list[Any]]:
    """The annotation and constraint metadata of a command field the path carries."""
    info = command.model_fields[field_name]
    return info.annotation, list(info.metadata)
