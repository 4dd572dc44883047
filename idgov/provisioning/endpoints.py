"""/provisioning: the recorded provisioning intent, the failed queue; a target's health."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.errors import Forbidden
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import health, service
from idgov.provisioning.schemas import (
    FailedFilter,
    HealthRead,
    OperationFilter,
    OperationPage,
    OperationRead,
    ResolveIn,
)
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.schemas import problem_responses

# No prefix: the health of a target lives under /applications.
router = APIRouter(tags=["provisioning"])

Reader = Annotated[Caller, Depends(require("provisioning:read"))]
Writer = Annotated[Caller, Depends(require("provisioning:write"))]
# The failed queue: readers see all; members of a resolution group see what is routed to it.
QueueReader = Annotated[Caller, Depends(require("provisioning:read", "fulfilment:work"))]


def _read(session: DbSession, ops: Iterable[ProvisioningOperation],
          clock: Clock) -> list[OperationRead]:
    ops = list(ops)
    reasons = service.waiting_reasons(session, ops, clock=clock)
    return [OperationRead.model_validate(o).model_copy(update={"waiting_reason": reasons.get(o.id)})
            for o in ops]


@router.get("/provisioning/operations", response_model=OperationPage, responses=problem_responses())
def list_operations(session: DbSession, _caller: Reader, clock: ClockDep,
                    filters: Annotated[OperationFilter, Query()]) -> OperationPage:
    """Operations recorded for changes of effective access, filtered by identity,
    application, request line, assignment, entitlement, state, cause or action. An open
    operation that is not running says why (``waiting_reason``)."""
    page = service.list_operations(session, filters=filters)
    return OperationPage(items=_read(session, page.items, clock), next_cursor=page.next_cursor)


@router.get("/provisioning/operations/{operation_id}", response_model=OperationRead,
            responses=problem_responses(404))
def get_operation(session: DbSession, _caller: Reader, clock: ClockDep,
                  operation_id: uuid.UUID) -> OperationRead:
    return _read(session, [service.get_operation(session, operation_id=operation_id)], clock)[0]


@router.get("/provisioning/failed", response_model=OperationPage, responses=problem_responses())
def list_failed(session: DbSession, caller: QueueReader, clock: ClockDep,
                filters: Annotated[FailedFilter, Query()]) -> OperationPage:
    """The failed-operations queue. Administrators and auditors see every failed operation;
    a member of a resolution group sees those routed to their groups."""
    group_ids = None
    if not caller.can("provisioning:read"):
        if caller.identity_id is None:
            raise Forbidden("the failed queue of a resolution group is for its members")
        group_ids = service.groups_of(session, caller.identity_id)
    page = service.list_failed(session, filters=filters, group_ids=group_ids)
    return OperationPage(items=_read(session, page.items, clock), next_cursor=page.next_cursor)


@router.post("/provisioning/operations/{operation_id}/retry", response_model=OperationRead,
             responses=problem_responses(404, 409))
def retry_operation(session: DbSession, caller: Writer, clock: ClockDep,
                    operation_id: uuid.UUID) -> OperationRead:
    """Put a failed operation back in the queue, due now (409 unless it is failed)."""
    op = service.retry_operation(session, operation_id=operation_id, actor=caller.actor,
                                 clock=clock)
    return _read(session, [op], clock)[0]


@router.post("/provisioning/operations/{operation_id}/cancel", response_model=OperationRead,
             responses=problem_responses(404, 409))
def cancel_operation(session: DbSession, caller: Writer, clock: ClockDep,
                     operation_id: uuid.UUID) -> OperationRead:
    """Give up an operation that is pending, waiting for a retry, or failed (409 when it is
    running or done)."""
    op = service.cancel_operation(session, operation_id=operation_id, actor=caller.actor,
                                  clock=clock)
    return _read(session, [op], clock)[0]


@router.post("/provisioning/operations/{operation_id}/resolve", response_model=OperationRead,
             responses=problem_responses(404, 409))
def resolve_operation(session: DbSession, caller: Writer, clock: ClockDep,
                      operation_id: uuid.UUID, resolve_in: ResolveIn) -> OperationRead:
    """Mark a failed operation as carried out by hand, with a note: it becomes succeeded
    (409 unless it is failed)."""
    op = service.resolve_operation(session, operation_id=operation_id, note=resolve_in.note,
                                   actor=caller.actor, clock=clock)
    return _read(session, [op], clock)[0]


@router.get("/applications/{application_id}/health", response_model=HealthRead,
            tags=["applications"], responses=problem_responses(404))
def application_health(session: DbSession, _caller: Reader, clock: ClockDep, ctx: Ctx,
                       application_id: uuid.UUID) -> HealthRead:
    """The target's circuit breaker, how many operations wait or failed, and a live
    connection test (it reaches the target now, within the connector's timeout)."""
    return health.check(session, application_id=application_id, settings=ctx.settings,
                        clock=clock)

