"""Aggregation and reconciliation runs: start them, read them and the drift they found.

A run whose target fails is stored (state ``failed``, with the classified error) and the
POST answers a problem: 503 when the failure is transient (unavailable, timeout, throttled;
``Retry-After`` when the target gave one), 502 when it is permanent (authentication, data,
policy, not supported). The body carries ``run_id`` and ``error_category``.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from idgov.auth.caller import Caller
from idgov.reconciliation import service
from idgov.reconciliation.schemas import (
    DriftFilter,
    DriftPage,
    DriftRead,
    ReconcileIn,
    RunFilter,
    RunPage,
    RunRead,
)
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.problems import problem
from idgov.web.schemas import ProblemDetail, problem_responses

if TYPE_CHECKING:
    from idgov.models.provisioning import ReconciliationRun

router = APIRouter(tags=["reconciliation"])

Reader = Annotated[Caller, Depends(require("reconciliation:read"))]
Writer = Annotated[Caller, Depends(require("reconciliation:write"))]


def _target_problem(description: str) -> dict[str, Any]:
    return {"model": ProblemDetail, "description": description,
            "content": {"application/problem+json": {}}}


RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(404, 409),
    502: _target_problem("The target refused for good (authentication, data, policy); "
                         "the failed run is stored"),
    503: _target_problem("The target is unavailable, timed out or throttled; the failed "
                         "run is stored"),
}


def _answer(run: ReconciliationRun) -> RunRead | JSONResponse:
    failure = service.failure_of(run)
    if failure is None:
        return RunRead.model_validate(run)
    status, title = (503, "Target unavailable") if failure.transient else (502, "Target error")
    response = problem(status, title, run.error or failure.category, type_="target-error",
                       run_id=str(run.id), error_category=failure.category)
    if failure.transient and failure.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(failure.retry_after)))
    return response


@router.post("/applications/{application_id}/aggregate", status_code=201,
             response_model=RunRead, responses=RUN_RESPONSES)
def aggregate(session: DbSession, caller: Writer, clock: ClockDep, ctx: Ctx,
              application_id: uuid.UUID) -> RunRead | JSONResponse:
    """Import the target's accounts and memberships: correlate accounts to identities,
    report orphans, record memberships nobody assigned as ``aggregation`` assignments."""
    run = service.run_for_application(session, application_id=application_id,
                                      kind="aggregation", remediate=False, settings=ctx.settings,
                                      actor=caller.actor, clock=clock)
    return _answer(run)


@router.post("/applications/{application_id}/reconcile", status_code=201,
             response_model=RunRead, responses=RUN_RESPONSES)
def reconcile(session: DbSession, caller: Writer, clock: ClockDep, ctx: Ctx,
              application_id: uuid.UUID, reconcile_in: ReconcileIn) -> RunRead | JSONResponse:
    """Compare the target with the desired state and store the drift; with ``remediate``,
    queue the operations that fix it."""
    run = service.run_for_application(session, application_id=application_id,
                                      kind="reconciliation",
                                      remediate=reconcile_in.remediate, settings=ctx.settings,
                                      actor=caller.actor, clock=clock)
    return _answer(run)


@router.get("/reconciliation/runs", response_model=RunPage, responses=problem_responses())
def list_runs(session: DbSession, caller: Reader,
              filters: Annotated[RunFilter, Query()]) -> RunPage:
    page = service.list_runs(session, filters=filters)
    return RunPage(items=[RunRead.model_validate(r) for r in page.items],
                   next_cursor=page.next_cursor)


@router.get("/reconciliation/runs/{run_id}", response_model=RunRead,
            responses=problem_responses(404))
def get_run(session: DbSession, caller: Reader, run_id: uuid.UUID) -> RunRead:
    return RunRead.model_validate(service.get_run(session, run_id=run_id))


@router.get("/reconciliation/runs/{run_id}/drift", response_model=DriftPage,
            responses=problem_responses(404))
def list_drift(session: DbSession, caller: Reader, run_id: uuid.UUID,
               filters: Annotated[DriftFilter, Query()]) -> DriftPage:
    """The differences a run found, with the operation that fixes each when there is one."""
    page = service.list_drift(session, run_id=run_id, filters=filters)
    return DriftPage(items=[DriftRead.model_validate(d) for d in page.items],
                     next_cursor=page.next_cursor)
