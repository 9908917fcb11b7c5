"""Request bodies: a command's payload model (infra.gateway.payloads.body_model)
minus the fields the URL path carries, which come in as path parameters."""

from __future__ import annotations

from typing import Any

from commands.models import Command
from infra.gateway.payloads import RequestBody, body_model

__all__ = ["RequestBody", "body_model", "path_field"]


def path_field(command: type[Command], field_name: str) -> tuple[Any, list[Any]]:
    """The annotation and constraint metadata of a command field the path carries."""
    info = command.model_fields[field_name]
    return info.annotation, list(info.metadata)
