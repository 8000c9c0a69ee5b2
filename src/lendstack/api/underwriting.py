"""Underwriting routes: submit an application, read a decision, list the rule packs.

The decision service is built on first use (it loads the credit model and the PII key), so an
app that only serves loans never pays for it. Decisions run inline in the event loop: a
decision is ~1–3 ms of CPU, less than a thread-pool hop costs under load.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lendstack.api.auth import Forbidden, Principal, require
from lendstack.api.problems import responses
from lendstack.storage.apikeys import Role
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.underwriting.application import Application
from lendstack.underwriting.rules import builtin_packs
from lendstack.underwriting.service import Underwriting
from lendstack.underwriting.views import decision_view

APPLICATIONS_PATH = "/v1/applications"

Submitter = Annotated[Principal, Depends(require(Role.CHANNEL, Role.RISK))]
Reader = Annotated[Principal, Depends(require(Role.CHANNEL, Role.RISK, Role.REGULATOR))]
DecisionId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Same key and body: the same decision back. Same key, other body: 409.",
    ),
]

router = APIRouter(prefix="/v1", tags=["underwriting"])


async def underwriting(request: Request) -> Underwriting:
    state = request.app.state
    if state.underwriting is None:
        from lendstack.wiring import underwriting_service

        state.underwriting = underwriting_service(state.settings, state.engine)
    service: Underwriting = state.underwriting
    return service


Service = Annotated[Underwriting, Depends(underwriting)]


@router.post(
    "/applications",
    status_code=201,
    responses=responses(401, 403, 409, 422),
    summary="Decide an application",
)
async def submit(
    application: Application,
    principal: Submitter,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The decision and the offer the borrower must see (APR as IRR, every fee, the schedule)."""
    if principal.role is Role.CHANNEL and application.channel != principal.channel:
        raise Forbidden(
            f"this key submits for channel {principal.channel!r}, not {application.channel!r}"
        )
    recorded = service.decide(application, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if recorded.replayed else {}
    status = 200 if recorded.replayed else 201
    view = decision_view(recorded.decision_id, recorded.record)
    return JSONResponse(view, status_code=status, headers=headers)


@router.get("/decisions/{decision_id}", responses=responses(401, 403, 404))
async def show_decision(
    decision_id: DecisionId, principal: Reader, service: Service
) -> JSONResponse:
    """A stored decision. A channel sees only its own; another channel's is 404."""
    channel = principal.channel if principal.role is Role.CHANNEL else None
    recorded = service.get(decision_id, channel=channel)
    return JSONResponse(decision_view(recorded.decision_id, recorded.record))


@router.get("/rule-packs", responses=responses(401))
async def rule_packs(
    principal: Annotated[Principal, Depends(require(*Role))],
) -> list[dict[str, Any]]:
    """The built-in rule packs with their versions and content hashes."""
    return [p.summary() for p in builtin_packs()]


def count_invalid_applications(request: Request, exc: RequestValidationError) -> None:
    """Invalid applications are counted (which fields, never the values), not decided."""
    if request.url.path != APPLICATIONS_PATH or request.method != "POST":
        return
    fields = [".".join(str(p) for p in err["loc"][1:]) or "body" for err in exc.errors()]
    state = request.app.state
    if state.decision_log is None:  # built once: it compiles its statements per dialect
        state.decision_log = SqlDecisionLog(state.engine)
    state.decision_log.count_rejected("api", None, fields, datetime.now(UTC))
