"""/review-flags: requested access flagged for the new manager's review after a move."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.auth.caller import Caller
from idgov.lifecycle import review_flags as service
from idgov.lifecycle.flag_schemas import (
    FlagDecisionIn,
    ReviewFlagFilter,
    ReviewFlagPage,
    ReviewFlagRead,
)
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/review-flags", tags=["review flags"])

# Persons hold review_flags:review (row rule: the flags they review); administrators and
# auditors review_flags:read (every flag); administrators review_flags:decide (any flag).
Reader = Annotated[Caller, Depends(require("review_flags:review", "review_flags:read",
                                           "review_flags:decide"))]
Decider = Annotated[Caller, Depends(require("review_flags:review", "review_flags:decide"))]


@router.get("", response_model=ReviewFlagPage, responses=problem_responses())
def list_flags(session: DbSession, caller: Reader,
               filters: Annotated[ReviewFlagFilter, Query()]) -> ReviewFlagPage:
    """Open flags (or those in ``state``): the caller's to review for a person, all of them
    for administrators and auditors."""
    page = service.list_flags(session, caller=caller, filters=filters)
    return ReviewFlagPage(items=[ReviewFlagRead.model_validate(f) for f in page.items],
                          next_cursor=page.next_cursor)


@router.get("/{flag_id}", response_model=ReviewFlagRead, responses=problem_responses(404))
def get_flag(session: DbSession, caller: Reader, flag_id: uuid.UUID) -> ReviewFlagRead:
    """One flag; another reviewer's flag does not exist for a person."""
    return ReviewFlagRead.model_validate(service.get_visible(session, caller=caller,
                                                             flag_id=flag_id))


@router.post("/{flag_id}/decision", response_model=ReviewFlagRead,
             responses=problem_responses(404, 409))
def decide_flag(session: DbSession, caller: Decider, clock: ClockDep, flag_id: uuid.UUID,
                body: FlagDecisionIn) -> ReviewFlagRead:
    """Keep the access (recorded as certified by the caller) or revoke it now. The flag's
    reviewer or an administrator; 409 when the flag is no longer open or (keep) the access
    already ended."""
    flag = service.decide_flag(session, flag_id=flag_id, caller=caller, decision=body.decision,
                               comment=body.comment, clock=clock)
    return ReviewFlagRead.model_validate(flag)
