"""/certification: reviewers' pages, decisions, bulk decisions, reassignment, sign-off,
progress and the rubber-stamping report."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from certification import review as service
from certification import stamping
from certification.review import ItemView
from certification.schemas_review import (
    BulkDecisionIn,
    BulkDecisionOut,
    DecisionIn,
    ItemFilter,
    ProgressRead,
    ReassignIn,
    ReviewerProgress,
    ReviewerStamping,
    ReviewItemDetail,
    ReviewItemPage,
    ReviewItemRead,
    SignOffIn,
    SignoffRead,
    StampingReport,
)
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/certification", tags=["certification"])

# Persons review their items (certification:review, row rule in the service);
# administrators (certification:admin) decide and reassign any item and sign off for a
# reviewer; administrators and auditors (certification:read) read everything and decide
# nothing.
Reader = Annotated[Caller, Depends(require("certification:review", "certification:read",
                                           "certification:admin"))]
Decider = Annotated[Caller, Depends(require("certification:review", "certification:admin"))]
Auditor = Annotated[Caller, Depends(require("certification:read", "certification:admin"))]


_NAMES = ("identity_name", "access_name", "application_name", "final", "role_name",
          "included_role_id")
_COLUMNS = tuple(f for f in ReviewItemRead.model_fields if f not in _NAMES)


def _read(view: ItemView) -> ReviewItemRead:
    item = view.item
    return ReviewItemRead.model_validate({
        **{c: getattr(item, c) for c in _COLUMNS},
        "identity_name": view.identity_name, "access_name": view.access_name,
        "application_name": view.application_name, "final": view.final,
        "role_name": view.role_name, "included_role_id": view.included_role_id})


def _detail(view: ItemView) -> ReviewItemDetail:
    return ReviewItemDetail.model_validate({**_read(view).model_dump(),
                                            "context": view.item.context or {}})


@router.get("/campaigns/{campaign_id}/items", response_model=ReviewItemPage,
            responses=problem_responses(404))
def list_items(session: DbSession, caller: Reader, campaign_id: uuid.UUID,
               filters: Annotated[ItemFilter, Query()]) -> ReviewItemPage:
    """A reviewer's page: their items of the campaign (all items for administrators and
    auditors), grouped by person then item, filtered, up to 500 per page."""
    page = service.list_items(session, caller=caller, campaign_id=campaign_id,
                              filters=filters)
    return ReviewItemPage(items=[_read(v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/items/{item_id}", response_model=ReviewItemDetail,
            responses=problem_responses(404))
def get_item(session: DbSession, caller: Reader, item_id: uuid.UUID) -> ReviewItemDetail:
    """One item with its context (how granted, last certified, SoD, peers, last use);
    someone else's item does not exist for a person."""
    return _detail(service.get_item(session, caller=caller, item_id=item_id))


@router.post("/items/{item_id}/decision", response_model=ReviewItemRead,
             responses=problem_responses(404, 409))
def decide(session: DbSession, caller: Decider, clock: ClockDep, item_id: uuid.UUID,
           body: DecisionIn) -> ReviewItemRead:
    """Certify, revoke, or back to pending; changeable until the reviewer signs off. 409
    when the campaign is not active or the decision is final; 422 without a mandatory
    comment (revoking privileged access, certifying an SoD conflict)."""
    return _read(service.decide(session, item_id=item_id, decision=body.decision,
                                comment=body.comment, caller=caller, clock=clock))


@router.post("/campaigns/{campaign_id}/bulk-decision", response_model=BulkDecisionOut,
             responses=problem_responses(404, 409))
def bulk_decide(session: DbSession, caller: Decider, clock: ClockDep,
                campaign_id: uuid.UUID, body: BulkDecisionIn) -> BulkDecisionOut:
    """One decision over the caller's open items: those listed in ``item_ids``, or those
    matching ``filter``. Nothing changes when one listed item is not the caller's (404) or
    is final (409), or when a mandatory comment is missing (422)."""
    decided = service.bulk_decide(
        session, campaign_id=campaign_id,
        selection=service.BulkSelection(item_ids=body.item_ids, filter=body.filter),
        decision=body.decision, comment=body.comment, caller=caller, clock=clock)
    return BulkDecisionOut(decided=decided)


@router.post("/items/{item_id}/reassign", response_model=ReviewItemRead,
             responses=problem_responses(404, 409))
def reassign(session: DbSession, caller: Decider, clock: ClockDep, item_id: uuid.UUID,
             body: ReassignIn) -> ReviewItemRead:
    """Give the item to another reviewer (told by a notification); 422 for the person
    whose access it is, an inactive or unknown person."""
    return _read(service.reassign(session, item_id=item_id, to_identity_id=body.to_identity_id,
                                  comment=body.comment, caller=caller, clock=clock))


@router.post("/campaigns/{campaign_id}/sign-off", response_model=SignoffRead,
             responses=problem_responses(404, 409))
def sign_off(session: DbSession, caller: Decider, clock: ClockDep, campaign_id: uuid.UUID,
             body: Annotated[SignOffIn | None, Body()] = None) -> SignoffRead:
    """Close the caller's part (no body needed): their decisions become final and take
    effect; the campaign closes when every reviewer has signed off. An administrator signs
    off for a reviewer with ``{"reviewer_id", "reason"}`` (403 for anyone else naming
    another reviewer; 422 without a reason or for someone who reviews nothing here). 409
    while items of the reviewer are pending, after their sign-off, or when the campaign is
    not active."""
    given = body or SignOffIn()
    outcome = service.sign_off_outcome(session, campaign_id=campaign_id, caller=caller,
                                       clock=clock, reviewer_id=given.reviewer_id,
                                       reason=given.reason)
    return SignoffRead(campaign_id=outcome.signoff.campaign_id,
                       reviewer_id=outcome.signoff.reviewer_id,
                       signed_off_at=outcome.signoff.signed_off_at, applied=outcome.applied,
                       campaign_state=outcome.campaign_state,
                       signed_off_by=outcome.signed_off_by, on_behalf=outcome.on_behalf)


@router.get("/campaigns/{campaign_id}/progress", response_model=ProgressRead,
            responses=problem_responses(404))
def progress(session: DbSession, caller: Reader, campaign_id: uuid.UUID) -> ProgressRead:
    """Counts by decision and by reviewer, with who signed off (a person: their part)."""
    found = service.progress(session, campaign_id=campaign_id, caller=caller)
    return ProgressRead(
        campaign_id=found.campaign_id, state=found.state, total=found.total,
        by_decision=found.by_decision, reviewers_signed_off=found.reviewers_signed_off,
        reviewers_total=found.reviewers_total,
        reviewers=[ReviewerProgress.model_validate(line, from_attributes=True)
                   for line in found.reviewers])


@router.get("/campaigns/{campaign_id}/rubber-stamping", response_model=StampingReport,
            responses=problem_responses(404))
def rubber_stamping(session: DbSession, caller: Auditor,
                    campaign_id: uuid.UUID) -> StampingReport:
    """Reviewers who certify everything, very fast or in bulk, high-risk items included:
    the evidence numbers per reviewer and the thresholds used."""
    found = stamping.report(session, campaign_id=campaign_id)
    return StampingReport(
        campaign_id=found.campaign_id, thresholds=found.thresholds,
        reviewers=[ReviewerStamping.model_validate(e, from_attributes=True)
                   for e in found.reviewers])
