"""/approvals, /delegations, /approval-authorities: thin endpoints over the approval services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.approvals import delegations, service
from idgov.approvals.schemas import (
    ApprovalFilter,
    ApprovalItem,
    ApprovalPage,
    AuthorityPage,
    AuthorityRead,
    AuthoritySet,
    DecisionIn,
    DelegationCreate,
    DelegationFilter,
    DelegationPage,
    DelegationRead,
)
from idgov.auth.caller import Caller
from idgov.errors import Forbidden
from idgov.requests.schemas import RequestRead
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import ListParams, problem_responses

router = APIRouter(tags=["approvals"])

ApprovalReader = Annotated[Caller, Depends(require("approvals:decide", "approvals:read"))]
Decider = Annotated[Caller, Depends(require("approvals:decide"))]
DelegationReader = Annotated[Caller, Depends(require("delegations:write", "delegations:read"))]
DelegationWriter = Annotated[Caller, Depends(require("delegations:write"))]
AuthorityReader = Annotated[Caller, Depends(require("authorities:read"))]
AuthorityWriter = Annotated[Caller, Depends(require("authorities:write"))]


def _person(caller: Caller) -> uuid.UUID:
    if caller.identity_id is None:
        raise Forbidden("only a person can do this")
    return caller.identity_id


@router.get("/approvals", response_model=ApprovalPage, responses=problem_responses())
def list_approvals(session: DbSession, caller: ApprovalReader, clock: ClockDep,
                   filters: Annotated[ApprovalFilter, Query()]) -> ApprovalPage:
    """A person's inbox: the waiting steps they may decide now (delegations included).
    Readers (approvals:read) see every step, filtered by state, approver or line."""
    page = service.list_approvals(session, caller=caller, filters=filters, clock=clock)
    return ApprovalPage(items=[service.item_view(session, s) for s in page.items],
                        next_cursor=page.next_cursor)


@router.get("/approvals/{step_id}", response_model=ApprovalItem,
            responses=problem_responses(404))
def get_approval(session: DbSession, caller: ApprovalReader, clock: ClockDep,
                 step_id: uuid.UUID) -> ApprovalItem:
    """One step with its line, request and policy decision (SoD context)."""
    step = service.get_visible(session, caller=caller, step_id=step_id, clock=clock)
    return service.item_view(session, step)


@router.post("/approvals/{step_id}/decision", response_model=RequestRead,
             responses=problem_responses(404, 409))
def decide(session: DbSession, caller: Decider, clock: ClockDep, step_id: uuid.UUID,
           decision_in: DecisionIn) -> RequestRead:
    """Approve or reject a waiting step (a rejection needs a comment). Answers the request
    as it now stands."""
    # The orchestration (line and request states, fulfilment) lives in requests, so that the
    # approvals services never import it; only this endpoint does.
    from idgov.requests.service import decide_step

    return decide_step(session, step_id=step_id, caller=caller,
                       decision=decision_in.decision, comment=decision_in.comment, clock=clock)


@router.post("/delegations", status_code=201, response_model=DelegationRead,
             responses=problem_responses())
def create_delegation(session: DbSession, caller: DelegationWriter, clock: ClockDep,
                      delegation_in: DelegationCreate) -> DelegationRead:
    """Let someone else decide your approvals for a while, for lines up to ``max_risk``."""
    delegation = delegations.create_delegation(session, delegator_id=_person(caller),
                                           delegation_in=delegation_in, actor=caller.actor,
                                           clock=clock)
    return DelegationRead.model_validate(delegation)


@router.get("/delegations", response_model=DelegationPage, responses=problem_responses())
def list_delegations(session: DbSession, caller: DelegationReader, clock: ClockDep,
                     filters: Annotated[DelegationFilter, Query()]) -> DelegationPage:
    """The delegations you gave or received; all of them with delegations:read."""
    page = delegations.list_delegations(session, caller=caller, filters=filters, clock=clock)
    return DelegationPage(items=[DelegationRead.model_validate(d) for d in page.items],
                          next_cursor=page.next_cursor)


@router.post("/delegations/{delegation_id}/revoke", response_model=DelegationRead,
             responses=problem_responses(404, 409))
def revoke_delegation(session: DbSession, caller: DelegationWriter, clock: ClockDep,
                      delegation_id: uuid.UUID) -> DelegationRead:
    """End one of your delegations now."""
    delegation = delegations.revoke_delegation(session, delegation_id=delegation_id, caller=caller,
                                           clock=clock)
    return DelegationRead.model_validate(delegation)


@router.put("/approval-authorities/{identity_id}", response_model=AuthorityRead,
            responses=problem_responses(404))
def set_authority(session: DbSession, caller: AuthorityWriter, clock: ClockDep,
                  identity_id: uuid.UUID, authority_in: AuthoritySet) -> AuthorityRead:
    """Give or change a person's delegated authority: on an urgent request they may then
    approve alone a line of risk up to ``max_risk`` (dual control still applies)."""
    authority = delegations.set_authority(session, identity_id=identity_id,
                                      max_risk=authority_in.max_risk, actor=caller.actor,
                                      clock=clock)
    return AuthorityRead.model_validate(authority)


@router.get("/approval-authorities", response_model=AuthorityPage,
            responses=problem_responses())
def list_authorities(session: DbSession, caller: AuthorityReader,
                     params: Annotated[ListParams, Query()]) -> AuthorityPage:
    page = delegations.list_authorities(session, limit=params.limit, cursor=params.cursor)
    return AuthorityPage(items=[AuthorityRead.model_validate(a) for a in page.items],
                         next_cursor=page.next_cursor)


@router.delete("/approval-authorities/{identity_id}", status_code=204,
               responses=problem_responses(404))
def remove_authority(session: DbSession, caller: AuthorityWriter, clock: ClockDep,
                     identity_id: uuid.UUID) -> Response:
    """Take a person's delegated authority away."""
    delegations.remove_authority(session, identity_id=identity_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)
