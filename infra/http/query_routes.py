"""Query routes. Single resources, history and verification are read from the ledger
itself (always current: their freshness is the ledger head); lists come from the
read models, with the read model's applied position as their freshness.

Every query takes ``?min_position=N`` (e.g. the position a command answered with)
and waits, at most `api_read_wait_seconds`, until its source has applied N; then
answers 503 ``read_model_behind`` with Retry-After. A position beyond the ledger
head was never written: 422 at once. Every answer carries ``freshness`` and an
``X-Ledger-Position`` header.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response

from domain.permissions import EVERYONE, INTERNAL
from domain.registration import RegistrationStatus
from infra.audit import api as audit
from infra.audit.store import AuditStore
from infra.audit.verify import Anchors
from infra.gateway import access
from infra.gateway.principals import Principal
from infra.http import responses, views
from infra.http.context import ApiContext
from infra.http.read_models import LEDGER
from infra.http.registrations_query import Page, list_registrations
from infra.http.route_docs import problem_responses
from infra.settings import Settings
from projections.attribution import PartnerAttribution, partner_attribution
from projections.pipeline import PipelineRow, pipeline_rows
from projections.registration_queue import OpenConflict, ReviewItem, open_conflicts, review_queue
from projections.store import ReadStore

router = APIRouter(tags=["queries"])
PROBLEMS = problem_responses(400, 401, 403, 404, 422, 503)
LIST_PROBLEMS = problem_responses(400, 401, 403, 422, 503)

MinPosition = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,
        description="wait (bounded) until this ledger position is reflected: 503 "
        "read_model_behind if it is not in time, 422 if it was never written",
    ),
]
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"  # no control characters (PostgreSQL text holds no NUL)
PartnerFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.-]*$")
]
TextFilter = Annotated[str | None, Query(max_length=200, pattern=PLAIN_TEXT)]
PartnerCodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.-]*$")]


def _ctx(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _fresh(response: Response, source: str, position: int) -> responses.Freshness:
    response.headers["X-Ledger-Position"] = str(position)
    return responses.Freshness(source=source, position=position)


# -- from the ledger ----------------------------------------------------------------------


@router.get(
    "/v1/registrations/{registration_id}",
    response_model=responses.RegistrationResponse,
    responses=PROBLEMS,
    summary="A registration (from the ledger)",
    description="Partners see only their own; others' answer 404 like unknown ids.",
)
def get_registration(
    request: Request, response: Response, registration_id: UUID, min_position: MinPosition = None
) -> responses.RegistrationResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, EVERYONE, "read registrations")
    position = ctx.read_models.ledger_position(min_position)
    registration = access.registration_for(ctx.ledger(), principal, registration_id)
    return responses.RegistrationResponse(
        # Related registrations are mostly other partners' claims: internal roles only.
        registration=views.registration_view(registration, show_related=not principal.is_partner),
        freshness=_fresh(response, LEDGER, position),
    )


@router.get(
    "/v1/partners/{partner_code}",
    response_model=responses.PartnerResponse,
    responses=PROBLEMS,
    summary="A partner (from the ledger)",
    description="A partner sees only itself.",
)
def get_partner(
    request: Request,
    response: Response,
    partner_code: PartnerCodePath,
    min_position: MinPosition = None,
) -> responses.PartnerResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, EVERYONE, "read partners")
    position = ctx.read_models.ledger_position(min_position)
    partner = access.partner_for(ctx.ledger(), principal, partner_code)
    return responses.PartnerResponse(
        partner=views.partner_view(partner), freshness=_fresh(response, LEDGER, position)
    )


@router.get(
    "/v1/deals/{deal_id}",
    response_model=responses.DealResponse,
    responses=PROBLEMS,
    summary="A deal (from the ledger)",
    description="Partners see only deals they are attached to; others answer 404.",
)
def get_deal(
    request: Request, response: Response, deal_id: UUID, min_position: MinPosition = None
) -> responses.DealResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, EVERYONE, "read deals")
    position = ctx.read_models.ledger_position(min_position)
    deal = access.deal_for(ctx.ledger(), principal, deal_id)
    return responses.DealResponse(
        deal=views.deal_view(deal, ctx.ledger().deal_notes(deal.id)),
        freshness=_fresh(response, LEDGER, position),
    )


@router.get(
    "/v1/deals/{deal_id}/history",
    response_model=responses.DealHistoryResponse,
    responses=PROBLEMS,
    summary="A deal's history and its state at a point (auditors and other internal roles)",
    description="Every event of the deal's streams — its own, its registration's and the whole "
    "channel-protection stream of its key, rivals' claims included (the events an export "
    "bundle holds) — in ledger order, replayed from stored events. With `as_of` (a time with "
    "UTC offset) or `version` (of the deal), the state is as it was then and the events stop "
    "there; a version the deal never reached is 404. Paged by `after` (a position) and `limit`.",
)
def get_deal_history(
    request: Request,
    response: Response,
    deal_id: UUID,
    as_of: datetime | None = None,
    version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    min_position: MinPosition = None,
) -> responses.DealHistoryResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, INTERNAL, "read deal history")
    position = ctx.read_models.ledger_position(min_position)
    ledger = ctx.ledger()
    access.deal_for(ledger, principal, deal_id)
    state = audit.state_as_of(ledger, deal_id, as_of=as_of, version=version)
    cutoff: int | None = None
    if version is not None or as_of is not None:
        cutoff = _deal_version_position(ctx, deal_id, state.deal_version)
    entries: list[responses.HistoryEntryView] = []
    more = False
    for entry in audit.history(ledger, deal_id, after_position=after):
        if cutoff is not None and entry.position > cutoff:
            break
        if as_of is not None and entry.occurred_at > as_of:
            continue
        if len(entries) == limit:
            more = True
            break
        entries.append(responses.HistoryEntryView(**entry.to_json()))
    return responses.DealHistoryResponse(
        deal_id=deal_id,
        as_of=as_of,
        version=version,
        state=responses.DealStateView(
            deal_version=state.deal_version,
            deal=state.deal,
            registration_version=state.registration_version,
            registration=state.registration,
        ),
        entries=entries,
        next_after=entries[-1].position if more and entries else None,
        freshness=_fresh(response, LEDGER, position),
    )


def _deal_version_position(ctx: ApiContext, deal_id: UUID, version: int) -> int:
    for row in AuditStore(ctx.ledger()).stream(deal_id, after_version=version - 1):
        return row.position
    return 0


@router.get(
    "/v1/deals/{deal_id}/verify",
    response_model=responses.VerifyResponse,
    responses=PROBLEMS,
    summary="Verify a deal's hash chains (auditors and other internal roles)",
    description="Recomputes the hash chains of the deal's stream, its registration and its "
    "channel protection from the stored rows. `ok: false` names what was altered.",
)
def verify_deal(
    request: Request, response: Response, deal_id: UUID, min_position: MinPosition = None
) -> responses.VerifyResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, INTERNAL, "verify deals")
    position = ctx.read_models.ledger_position(min_position)
    ledger = ctx.ledger()
    access.deal_for(ledger, principal, deal_id)
    report = audit.verify(ledger, deal_id, _file_anchors(ctx.settings))
    return responses.VerifyResponse(
        deal_id=deal_id,
        ok=report.ok,
        streams=report.streams,
        events=report.events,
        unsealed=report.unsealed,
        heads=[
            responses.ChainHead(stream=stream, version=v, hash=digest)
            for stream, (v, digest) in sorted(report.heads.items(), key=lambda kv: str(kv[0]))
        ],
        tree_size=report.tree_size,
        root=report.root,
        anchored_to=None
        if report.anchored_to is None
        else f"checkpoint of {report.anchored_to['tree_size']} events signed "
        f"{report.anchored_to['time']} by key {report.anchored_to['key_id']}",
        problems=[str(p) for p in report.problems],
        freshness=_fresh(response, LEDGER, position),
    )


def _file_anchors(settings: Settings) -> Anchors | None:
    """The checkpoint file, when configured and readable with a known public key: the
    API holds the store to it as `dealledger verify` does (the topic it leaves to the
    CLI: reading a whole topic per request would be slow)."""
    from infra.audit.checkpoints import KeyProblem, read_file, trusted_public_key
    from infra.audit.verify import anchors

    path = settings.checkpoint_file
    if path is None or not path.exists():
        return None
    try:
        key = trusted_public_key(settings)
    except (KeyProblem, OSError):
        return None
    return None if key is None else anchors(read_file(path), key)


# -- from the read models -------------------------------------------------------------------


@router.get(
    "/v1/registrations",
    response_model=responses.RegistrationList,
    responses=LIST_PROBLEMS,
    summary="Registrations (registration-queue read model)",
    description="Partners see only their own. Ordered by submission time, paged by cursor.",
)
def get_registrations(
    request: Request,
    response: Response,
    status: Annotated[list[RegistrationStatus] | None, Query()] = None,
    partner: PartnerFilter = None,
    conflict_key: TextFilter = None,
    cursor: Annotated[str | None, Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    min_position: MinPosition = None,
) -> responses.RegistrationList:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, EVERYONE, "list registrations")
    wanted = access.listed_partners(principal, partner)

    def read(store: ReadStore) -> Page:
        if len(wanted) > 1:
            return Page([], None)  # a registration has one partner
        return list_registrations(
            store,
            statuses=[s.value for s in status or ()],
            partner=next(iter(wanted), None),
            conflict_key=conflict_key,
            cursor=cursor,
            limit=limit,
        )

    page, position = ctx.read_models.query("registration_queue", min_position, read)
    return responses.RegistrationList(
        registrations=page.rows,
        next_cursor=page.next_cursor,
        freshness=_fresh(response, "registration_queue", position),
    )


@router.get(
    "/v1/pipeline",
    response_model=responses.PipelineResponse,
    responses=LIST_PROBLEMS,
    summary="Open deals and totals (pipeline read model)",
    description="Partners see only deals they are attached to. `partner` matches any attached "
    "partner. Totals are over the deals listed, per `group_by` key and currency.",
)
def get_pipeline(
    request: Request,
    response: Response,
    partner: PartnerFilter = None,
    stage: TextFilter = None,
    region: TextFilter = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    group_by: Literal["stage", "partner", "region", "currency"] = "stage",
    min_position: MinPosition = None,
) -> responses.PipelineResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, EVERYONE, "read the pipeline")
    now = ctx.now()
    wanted = access.listed_partners(principal, partner)

    def read(store: ReadStore) -> list[PipelineRow]:
        rows = pipeline_rows(
            store,
            now=now,
            partner=next(iter(wanted), None),  # narrowed further below
            stage=stage,
            region=region,
            currency=currency,
        )
        return [r for r in rows if wanted <= {r.sourcing_partner, *r.influencing_partners}]

    rows, position = ctx.read_models.query("pipeline", min_position, read)
    return responses.PipelineResponse(
        deals=[views.pipeline_deal(r) for r in rows],
        group_by=group_by,
        totals=views.pipeline_totals(rows, group_by),
        freshness=_fresh(response, "pipeline", position),
    )


@router.get(
    "/v1/attribution",
    response_model=responses.AttributionResponse,
    responses=LIST_PROBLEMS,
    summary="Partner attribution (attribution read model)",
    description="Sourced vs influenced open pipeline, won revenue by share, win rate and "
    "cycle length per partner. A partner sees only its own row.",
)
def get_attribution(
    request: Request,
    response: Response,
    partner: PartnerFilter = None,
    min_position: MinPosition = None,
) -> responses.AttributionResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, EVERYONE, "read attribution")
    wanted = access.listed_partners(principal, partner)

    def read(store: ReadStore) -> list[PartnerAttribution]:
        rows = partner_attribution(store)
        return [r for r in rows if all(r.partner_code == p for p in wanted)]

    rows, position = ctx.read_models.query("attribution", min_position, read)
    return responses.AttributionResponse(
        partners=[views.attribution_row(r) for r in rows],
        freshness=_fresh(response, "attribution", position),
    )


@router.get(
    "/v1/review-queue",
    response_model=responses.ReviewQueueResponse,
    responses=LIST_PROBLEMS,
    summary="Registrations awaiting review, and open conflicts (internal roles)",
    description="Aged from submission against the approval SLA; conflicts are conflict keys "
    "with more than one live registration.",
)
def get_review_queue(
    request: Request, response: Response, min_position: MinPosition = None
) -> responses.ReviewQueueResponse:
    ctx, principal = _ctx(request), _principal(request)
    access.require_role(principal, INTERNAL, "read the review queue")
    now = ctx.now()
    sla = ctx.settings.approval_sla_hours

    def read(store: ReadStore) -> tuple[list[ReviewItem], list[OpenConflict]]:
        return review_queue(store, now=now, sla_hours=sla), open_conflicts(store, now=now)

    (items, conflicts), position = ctx.read_models.query("registration_queue", min_position, read)
    return responses.ReviewQueueResponse(
        items=[views.review_item(i) for i in items],
        conflicts=[views.conflict_view(c) for c in conflicts],
        sla_hours=sla,
        freshness=_fresh(response, "registration_queue", position),
    )
