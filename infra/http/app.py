"""The HTTP API's composition: `create_app(wiring)`.

Request flow: the middleware names the request (X-Correlation-Id), authenticates
every /v1 request from its API key (401 before anything else is looked at), counts
it, and turns any exception that escaped into a problem (503 when the database is
unreachable, else a logged 500 without details). Exception handlers map domain
refusals, validation errors and unknown routes onto problem bodies.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from domain.errors import DomainError
from infra.bootstrap import Wiring
from infra.gateway.principals import Unauthenticated
from infra.gateway.problems import (
    PROBLEM_MEDIA_TYPE,
    InvalidRequest,
    Refusal,
    invalid_values,
    is_database_unavailable,
    problem_body,
    refusal,
    validation_errors,
)
from infra.http.command_routes import add_command_routes
from infra.http.context import ApiContext
from infra.http.ops_routes import router as ops_router
from infra.http.query_routes import router as query_router
from infra.http.read_models import ReadModelBehind
from infra.http.route_docs import install_openapi
from infra.logging import get_logger

log = get_logger("api")

DESCRIPTION = """Deal Ledger's HTTP API: commands as resource actions, queries with
freshness, RFC 9457 problems. Authenticate every /v1 request with an API key
(`Authorization: Bearer dl_<id>_<secret>` or `X-API-Key`); see docs/http-api.md."""
RETRY_AFTER_SECONDS = 2  # when the database is unreachable


def problem(
    request: Request,
    code: str,
    detail: str,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(
        code, detail, request.url.path, status=status, errors=errors, extensions=extensions
    )
    return JSONResponse(
        body, status_code=body["status"], headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def refused(
    request: Request, answer: Refusal, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A gateway refusal as a problem response."""
    return problem(
        request,
        answer.code,
        answer.detail,
        status=answer.status,
        headers=headers,
        errors=answer.errors,
        extensions=dict(answer.extensions),
    )


def is_malformed(errors: list[dict[str, Any]]) -> bool:
    """400 rather than 422: the body is not JSON, or a header is malformed."""
    return any(e["type"] == "json_invalid" for e in errors) or (
        bool(errors) and all(e["loc"][:1] == ["header"] for e in errors)
    )


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else header
    return request.headers.get("x-api-key")


def _install_middleware(app: FastAPI, ctx: ApiContext) -> None:
    @app.middleware("http")
    async def edge(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        correlation = request.headers.get("x-correlation-id") or str(uuid.uuid4())
        response: Response
        try:
            if request.url.path == "/v1" or request.url.path.startswith("/v1/"):
                request.state.principal = await run_in_threadpool(
                    ctx.gateway.authenticate, _presented_key(request)
                )
            response = await call_next(request)
        except Unauthenticated as exc:
            ctx.metrics.auth_failure(exc.reason)
            challenge = 'Bearer realm="dealledger"'
            if exc.reason != "missing":
                challenge += ', error="invalid_token"'
            response = refused(request, refusal(exc), headers={"WWW-Authenticate": challenge})
        except Exception as exc:
            response = _unexpected(request, exc, correlation)
        response.headers.setdefault("X-Correlation-Id", correlation[:200])
        route = request.scope.get("route")
        ctx.metrics.request(
            request.method, getattr(route, "path", "unmatched"), response.status_code
        )
        log.debug(
            "request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 2),
            correlation_id=correlation,
        )
        return response


def _unexpected(request: Request, exc: Exception, correlation: str) -> JSONResponse:
    if is_database_unavailable(exc):
        log.warning("database unavailable", path=request.url.path, error=repr(exc))
        return problem(
            request,
            "database_unavailable",
            "the database cannot be reached; retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.exception("unhandled error", path=request.url.path, correlation_id=correlation)
    return problem(
        request,
        "internal_error",
        "an unexpected error occurred; it has been logged",
        extensions={"correlation_id": correlation},
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, asked of the routes
    themselves (included routers too) by matching the path with each method."""
    routes = request.app.router.routes

    def served(method: str) -> bool:
        probe = {**request.scope, "method": method}
        return any(route.matches(probe)[0] is Match.FULL for route in routes)

    return [method for method in _METHODS if served(method)]


def _install_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        answer = refusal(exc)
        headers = {"Retry-After": "1"} if answer.code == "concurrent_modification" else None
        return refused(request, answer, headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError | InvalidRequest)
        errors = validation_errors(exc.errors if isinstance(exc, InvalidRequest) else exc.errors())
        if is_malformed(errors):
            return problem(request, "malformed_request", "the request could not be read",
                           errors=errors)  # fmt: skip
        return refused(request, invalid_values(errors))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            return problem(request, "not_found", f"no route {request.url.path}", headers=headers)
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path.
            headers["Allow"] = ", ".join(allowed_methods(request))
            return problem(
                request,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path}",
                headers=headers,
            )
        code = {400: "malformed_request", 401: "unauthenticated", 403: "forbidden"}.get(
            exc.status_code, "http_error"
        )
        return problem(request, code, str(exc.detail), status=exc.status_code, headers=headers)

    async def on_read_model_behind(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ReadModelBehind)
        return problem(
            request,
            "read_model_behind",
            str(exc),
            headers={"Retry-After": "1"},
            extensions={
                "source": exc.source,
                "position": exc.position,
                "min_position": exc.min_position,
            },
        )

    async def last_resort(request: Request, exc: Exception) -> Response:
        """Only reached if the edge middleware itself failed."""
        return _unexpected(request, exc, request.headers.get("x-correlation-id", ""))

    app.add_exception_handler(Exception, last_resort)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(InvalidRequest, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ReadModelBehind, on_read_model_behind)


def create_app(wiring: Wiring) -> FastAPI:
    """The API on `wiring`'s parts; its shutdown closes them (a given ledger stays open)."""
    ctx = ApiContext(wiring)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:  # the read models' feed starts with the process (queries never feed)
            await run_in_threadpool(ctx.read_models.start)
        except Exception as exc:  # the database may be away: queries start it later
            log.warning("read models not started yet", error=repr(exc))
        yield
        ctx.close()

    app = FastAPI(
        title="Deal Ledger API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.context = ctx
    add_command_routes(app)
    app.include_router(query_router)
    app.include_router(ops_router)
    _install_handlers(app)
    _install_middleware(app, ctx)
    install_openapi(app)
    return app
