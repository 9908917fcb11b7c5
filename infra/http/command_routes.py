"""Command routes: handling and wiring of the rows of `command_table.COMMAND_ROUTES`.

Every command route takes its body (the command's fields without command_id, actor
and correlation_id, and without what the path carries), an optional
``Idempotency-Key`` (the command id; generated when absent) and an optional
``X-Correlation-Id``. The actor is always the authenticated principal.

A repeated Idempotency-Key returns the first response again — same status, same
body (the position it wrote then) — with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Path, Request
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from infra.gateway.principals import IDEMPOTENCY_KEY_MAX, Principal
from infra.http.bodies import body_model, path_field
from infra.http.command_table import COMMAND_ROUTES, CommandRoute
from infra.http.context import ApiContext
from infra.http.responses import CommandAccepted
from infra.http.route_docs import problem_responses

# -- handling ---------------------------------------------------------------------------


def handle_command(
    ctx: ApiContext,
    route: CommandRoute,
    principal: Principal,
    body: BaseModel | None,
    path: dict[str, Any],
    idempotency_key: str | None,
    correlation_id: str | None,
) -> JSONResponse:
    fields: dict[str, Any] = {**(body.model_dump() if body is not None else {}), **path}
    accepted = ctx.gateway.issue(
        principal,
        route.command.type_name,
        fields,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
    )
    headers = {"X-Ledger-Position": str(accepted.position), "Idempotency-Key": accepted.command_id}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    if route.location is not None:
        headers["Location"] = route.location.format(
            aggregate_id=accepted.aggregate_id, **{k: str(v) for k, v in accepted.fields.items()}
        )
    answer = CommandAccepted.model_validate(accepted, from_attributes=True)
    return JSONResponse(
        answer.model_dump(mode="json"),
        status_code=201 if route.created else 200,
        headers=headers,
    )


# -- wiring -------------------------------------------------------------------------------

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=r"^[\x21-\x7e]+$",
        description="the command id (printable ASCII, at most 100 characters); a repeat "
        "returns the first response. Generated when absent.",
    ),
]
CorrelationId = Annotated[
    str | None,
    Header(
        alias="X-Correlation-Id",
        max_length=200,
        description="recorded on every event the command causes (default: the command id)",
    ),
]


def _endpoint(route: CommandRoute) -> Callable[..., JSONResponse]:
    body_type = body_model(
        route.command, path_fields=route.path_fields, optional=route.policy.self_filled
    )

    def endpoint(request: Request, **params: Any) -> JSONResponse:
        body = params.pop("body", None)
        idempotency_key = params.pop("idempotency_key", None)
        correlation_id = params.pop("correlation_id", None)
        return handle_command(
            request.app.state.context,
            route,
            request.state.principal,
            body,
            params,
            idempotency_key,
            correlation_id,
        )

    parameters = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    ]
    for name in route.path_fields:
        annotation, metadata = path_field(route.command, name)
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[(annotation, *metadata, Path())],
            )
        )
    if body_type is not None:
        examples = {"example": Example(value=route.example)} if route.example else None
        # A body whose every field has a default may be left out altogether.
        optional = not any(f.is_required() for f in body_type.model_fields.values())
        body_annotation: Any = body_type | None if optional else body_type
        parameters.append(
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[body_annotation, Body(openapi_examples=examples)],
                default=None if optional else inspect.Parameter.empty,
            )
        )
    for name, annotation in (
        ("idempotency_key", IdempotencyKey),
        ("correlation_id", CorrelationId),
    ):
        parameters.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None
            )
        )
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = route.command.__name__
    return endpoint


def add_command_routes(app: FastAPI) -> None:
    for route in COMMAND_ROUTES:
        policy = route.policy
        roles = ", ".join(sorted(r.value for r in policy.roles))
        app.add_api_route(
            route.path,
            _endpoint(route),
            methods=[route.method],
            status_code=201 if route.created else 200,
            response_model=CommandAccepted,
            summary=policy.doing[0].upper() + policy.doing[1:],
            description=(
                f"Issues `{route.command.__name__}`. Roles: {roles}."
                + (" Partners only for their own resources." if policy.scope != "none" else "")
            ),
            operation_id=route.command.__name__,
            tags=["commands"],
            responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
        )
