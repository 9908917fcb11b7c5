"""Operations routes (no API key needed): liveness, readiness, metrics, problem types."""

from __future__ import annotations

import socket
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from domain.errors import NotFound
from infra.gateway.problems import PROBLEM_TYPES, problem_type_uri
from infra.http.context import ApiContext
from infra.http.metrics import CONTENT_TYPE, Gauge
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


def _gauges(ctx: ApiContext) -> list[Gauge]:
    gauges: list[Gauge] = [Gauge("dealledger_up", "The API process is up.", [((), 1)])]
    try:
        head = ctx.ledger().recorder.max_notification_id() or 0
        positions = ctx.read_models.positions()
    except Exception as exc:
        log.warning("metrics: positions unavailable", error=repr(exc))
        return gauges
    gauges.append(Gauge("dealledger_ledger_head_position", "Highest stored ledger position.",
                        [((), head)]))  # fmt: skip
    gauges.append(
        Gauge(
            "dealledger_read_model_position",
            "Highest ledger position applied to each read model.",
            [((("projection", p),), v) for p, v in sorted(positions.items())],
        )
    )
    gauges.append(
        Gauge(
            "dealledger_projector_lag_positions",
            "Ledger positions not yet applied to each read model (head - applied).",
            [((("projection", p),), max(0, head - v)) for p, v in sorted(positions.items())],
        )
    )
    published = _relay_position(ctx)
    if published is not None:
        gauges.append(Gauge("dealledger_relay_published_position",
                            "Highest ledger position the relay published to Kafka.",
                            [((), published)]))  # fmt: skip
        gauges.append(Gauge("dealledger_relay_lag_positions",
                            "Stored ledger positions not yet published to Kafka.",
                            [((), max(0, head - published))]))  # fmt: skip
    return gauges


def _relay_position(ctx: ApiContext) -> int | None:
    if not ctx.settings.uses_postgres:
        return None
    from infra.kafka.relay import RELAY_NAME

    try:
        with ctx.db.reading() as store:
            if store.scalar("SELECT to_regclass('relay_positions') IS NOT NULL") is not True:
                return None
            value = store.scalar(
                "SELECT position FROM relay_positions WHERE relay_name = %s", (RELAY_NAME,)
            )
    except Exception as exc:
        log.warning("metrics: relay position unavailable", error=repr(exc))
        return None
    return 0 if value is None else int(value)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (text format 0.0.4)",
    responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> PlainTextResponse:
    ctx = _ctx(request)
    started = time.perf_counter()
    text = ctx.metrics.render(_gauges(ctx))
    text += (
        "# HELP dealledger_metrics_scrape_seconds Time to collect these metrics.\n"
        "# TYPE dealledger_metrics_scrape_seconds gauge\n"
        f"dealledger_metrics_scrape_seconds {time.perf_counter() - started:.6f}\n"
    )
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


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
