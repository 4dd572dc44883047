"""/assignments: thin endpoints over the assignment services (the desired state)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.assignments import service
from idgov.assignments.schemas import (
    AssignmentCreate,
    AssignmentFilter,
    AssignmentPage,
    AssignmentRead,
    AssignmentRevoke,
)
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/assignments", tags=["assignments"])

Reader = Annotated[Caller, Depends(require("assignments:read", "assignments:read_related"))]
Writer = Annotated[Caller, Depends(require("assignments:write"))]


@router.get("", response_model=AssignmentPage, responses=problem_responses())
def list_assignments(session: DbSession, caller: Reader, clock: ClockDep,
                     filters: Annotated[AssignmentFilter, Query()]) -> AssignmentPage:
    """Assignments, current and past. Managers see their reports', owners their items'."""
    page = service.list_assignments(session, caller=caller, filters=filters, clock=clock)
    return AssignmentPage(items=[AssignmentRead.model_validate(a) for a in page.items],
                          next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=AssignmentRead,
             responses=problem_responses(409))
def create_assignment(session: DbSession, caller: Writer, clock: ClockDep,
                      assignment_in: AssignmentCreate) -> AssignmentRead:
    """Grant a role or an entitlement directly (source ``admin``), with a reason."""
    assignment = service.create_assignment(session, assignment_in=assignment_in,
                                           actor=caller.actor, clock=clock)
    return AssignmentRead.model_validate(assignment)


@router.get("/{assignment_id}", response_model=AssignmentRead, responses=problem_responses(404))
def get_assignment(session: DbSession, caller: Reader,
                   assignment_id: uuid.UUID) -> AssignmentRead:
    assignment = service.get_visible(session, caller=caller, assignment_id=assignment_id)
    return AssignmentRead.model_validate(assignment)


@router.post("/{assignment_id}/revoke", response_model=AssignmentRead,
             responses=problem_responses(404, 409))
def revoke_assignment(session: DbSession, caller: Writer, clock: ClockDep,
                      assignment_id: uuid.UUID, revoke_in: AssignmentRevoke) -> AssignmentRead:
    """End an assignment now, with a reason. The row is kept as history."""
    assignment = service.revoke(session, assignment_id=assignment_id, reason=revoke_in.reason,
                                actor=caller.actor, clock=clock)
    return AssignmentRead.model_validate(assignment)
