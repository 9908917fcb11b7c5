"""Operations routes (no API key needed): liveness, readiness, metrics, problem types."""

from __future__ import annotations

import socket
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from domain.errors import NotFound
from infra.gateway.problems import PROBLEM_TYPES, problem_type_uri
from infra.http.context import ApiContext
from infra.http.metrics import CONTENT_TYPE
from infra.http.route_docs import problem_responses
from infra.logging import get_logger

router = APIRouter(tags=["operations"])
log = get_logger("api")
KAFKA_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str  # ready | unavailable
    checks: dict[str, str]  # name -> ok | not configured | the error


class ProblemTypeDoc(BaseModel):
    type: str
    code: str
    status: int
    title: str
    description: str


def _ctx(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


def _check(name: str, checks: dict[str, str], probe: Any) -> None:
    try:
        probe()
        checks[name] = "ok"
    except Exception as exc:
        log.warning("readiness check failed", check=name, error=repr(exc))
        checks[name] = f"unavailable: {type(exc).__name__}"


def _kafka_reachable(servers: list[str]) -> None:
    """A TCP connection to any bootstrap server within the timeout."""
    errors = []
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection(
                (host or server, int(port or 9092)), KAFKA_TIMEOUT_SECONDS
            ):
                return
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    raise ConnectionError("; ".join(errors) or "no bootstrap servers")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a dependency is unreachable"}},
    summary="The database (and Kafka, when configured) can be reached",
)
def readyz(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    checks: dict[str, str] = {}

    def database() -> None:
        ctx.ledger().recorder.max_notification_id()
        ctx.db.ping()

    _check("database", checks, database)
    _check("read_models", checks, ctx.read_models.db.ping)
    if ctx.settings.bootstrap_servers:
        _check("kafka", checks, lambda: _kafka_reachable(ctx.settings.bootstrap_servers))
    else:
        checks["kafka"] = "not configured"
    ready = all(v in ("ok", "not configured") for v in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    headers = {} if ready else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503, headers=headers)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (text exposition format)",
    responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    return Response(_ctx(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get(
    "/problems/{code}",
    response_model=ProblemTypeDoc,
    responses=problem_responses(404, 422),
    summary="What a problem type means (the `type` of every problem body)",
)
def problem_type(code: str) -> ProblemTypeDoc:
    kind = PROBLEM_TYPES.get(code)
    if kind is None:
        raise NotFound(f"no problem type {code}")
    return ProblemTypeDoc(
        type=problem_type_uri(kind.code),
        code=kind.code,
        status=kind.status,
        title=kind.title,
        description=kind.description,
    )
