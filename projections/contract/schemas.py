"""JSON Schemas (draft 2020-12) of the messages published to `dealledger.events.v1`.

One schema per event type describes the WHOLE published value (envelope and `data`).
Each is generated from that type's message model (projections.contract.models), the
same model every consumer decodes with, so the published schema and the check a
projector applies cannot drift apart. `write_schemas` renders them to files;
`docs/events/` holds the committed copy, and a unit test keeps it current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from projections.contract.catalogue import (
    AGGREGATES,
    ENVELOPE_FIELDS,
    INTERNAL_AGGREGATE_TYPES,
    EventKind,
    event_classes,
    event_kinds,
    kind_of,
)
from projections.contract.models import message_model

__all__ = [
    "AGGREGATES",
    "ENVELOPE_FIELDS",
    "INTERNAL_AGGREGATE_TYPES",
    "event_classes",
    "event_schema",
    "event_type_of_class",
    "kind_schema",
    "write_schemas",
]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URI = "https://dealledger.example/schemas/"


def event_type_of_class(cls: type) -> tuple[str, str]:
    """(aggregate type, event type) of the events of `cls`."""
    kind = kind_of(cls)
    return kind.aggregate_type, kind.event_type


def kind_schema(kind: EventKind) -> dict[str, Any]:
    """The JSON Schema of the full published message of `kind`."""
    generated = message_model(kind).model_json_schema()
    title = f"{kind.event_type} ({kind.cls.__qualname__})"
    if kind.internal:
        title += ", internal bookkeeping"
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE_URI}{kind.event_type}.json",
        "title": title,
    }
    if kind.doc:
        schema["description"] = kind.doc
    generated.pop("title", None)
    generated.pop("description", None)
    schema |= generated
    return schema


def event_schema(cls: type) -> dict[str, Any]:
    return kind_schema(kind_of(cls))


def schema_file_name(event_type: str) -> str:
    return f"{event_type}.json"


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_schemas(out_dir: Path) -> list[Path]:
    """Write `<event_type>.json` per event type and `index.json`; returns the paths
    written (the index last). Files already in `out_dir` are overwritten, never removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    entries: list[dict[str, Any]] = []
    for kind in event_kinds():
        schema = kind_schema(kind)
        path = out_dir / schema_file_name(kind.event_type)
        path.write_text(_dump(schema), encoding="utf-8")
        written.append(path)
        entries.append(
            {
                "event_type": kind.event_type,
                "ce_type": kind.event_type,
                "aggregate_type": kind.aggregate_type,
                "event_class": f"{kind.cls.__module__}.{kind.cls.__qualname__}",
                "class_version": kind.class_version,
                "internal": kind.internal,
                "schema": path.name,
                "$id": schema["$id"],
            }
        )
    index = out_dir / "index.json"
    index.write_text(_dump({"event_types": entries}), encoding="utf-8")
    written.append(index)
    return written
