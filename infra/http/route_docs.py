"""OpenAPI plumbing: problem responses on every operation, and the Problem schema."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from infra.gateway.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPES, Problem

_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    400: "Malformed request (not JSON, or a malformed header)",
    401: "No valid API key",
    403: "The caller's role may not do this",
    404: "No such resource, or not one the caller may see",
    409: "Conflict with the current state",
    422: "Invalid values (`errors` lists them)",
    500: "Unexpected error (logged; no details leak)",
    503: "Database unreachable, or the read model behind `min_position` (see Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    every = (*statuses, 500)
    codes = {status: sorted(p.code for p in PROBLEM_TYPES.values() if p.status == status)
             for status in every}  # fmt: skip
    return {
        status: {
            "description": f"{_DESCRIPTIONS.get(status, 'Problem')} — codes: "
            + ", ".join(f"`{c}`" for c in codes[status]),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _REF}},
        }
        for status in every
    }


def install_openapi(app: FastAPI) -> None:
    """The generated document, plus the Problem schemas the responses refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in problem.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas["Problem"] = problem
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "dl_<id>_<secret>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        schema["security"] = [{"bearer": []}, {"apiKey": []}]
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route of `app`, looking into included routers (which newer FastAPI
    versions keep as one lazily expanded entry in `app.routes`)."""
    found: list[APIRoute] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):
                walk(list(route.original_router.routes))

    walk(list(app.routes))
    return found
