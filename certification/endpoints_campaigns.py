"""/certification/campaigns: define, launch, cancel and read certification campaigns."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from certification import campaigns as service
from certification.schemas_campaigns import (
    CampaignCancel,
    CampaignCreate,
    CampaignFilter,
    CampaignPage,
    CampaignRead,
)
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/certification/campaigns", tags=["certification"])

# Administrators define and run campaigns; administrators and auditors read them all; a
# person reads the campaigns they review items in (row rule in the service).
Admin = Annotated[Caller, Depends(require("certification:admin"))]
Reader = Annotated[Caller, Depends(require("certification:read", "certification:admin",
                                           "certification:review"))]


@router.post("", status_code=201, response_model=CampaignRead, responses=problem_responses())
def create_campaign(session: DbSession, caller: Admin, clock: ClockDep,
                    body: CampaignCreate) -> CampaignRead:
    """A draft campaign: scope, reviewer rule and fallbacks, start, deadline, reminders,
    escalation and what happens to undecided items. 422 for a scope naming nothing, a group
    fallback without a group, a deadline before the start, or kind composition (not yet
    supported)."""
    campaign = service.create_campaign(session, campaign_in=body, actor=caller.actor,
                                       clock=clock)
    return CampaignRead.model_validate(campaign)


@router.get("", response_model=CampaignPage, responses=problem_responses())
def list_campaigns(session: DbSession, caller: Reader,
                   filters: Annotated[CampaignFilter, Query()]) -> CampaignPage:
    """Campaigns (all for administrators and auditors; for a person, those they review
    items in), optionally by state and kind."""
    page = service.list_campaigns(session, caller=caller, filters=filters)
    return CampaignPage(items=[CampaignRead.model_validate(c) for c in page.items],
                        next_cursor=page.next_cursor)


@router.get("/{campaign_id}", response_model=CampaignRead, responses=problem_responses(404))
def get_campaign(session: DbSession, caller: Reader, campaign_id: uuid.UUID) -> CampaignRead:
    """One campaign with its counts; a campaign a person reviews nothing in does not exist
    for them."""
    return CampaignRead.model_validate(service.get_campaign(session, campaign_id=campaign_id,
                                                            caller=caller))


@router.post("/{campaign_id}/launch", response_model=CampaignRead,
             responses=problem_responses(404, 409))
def launch_campaign(session: DbSession, caller: Admin, clock: ClockDep,
                    campaign_id: uuid.UUID) -> CampaignRead:
    """Generate the review items (one per assignment in force in scope, as it stands now)
    and make the campaign active. 409 when it is not a draft, or when assignments of its
    scope are already under review in another active campaign (named; nothing created)."""
    campaign = service.launch(session, campaign_id=campaign_id, actor=caller.actor,
                              clock=clock)
    return CampaignRead.model_validate(campaign)


@router.post("/{campaign_id}/cancel", response_model=CampaignRead,
             responses=problem_responses(404, 409))
def cancel_campaign(session: DbSession, caller: Admin, clock: ClockDep, campaign_id: uuid.UUID,
                    body: CampaignCancel | None = None) -> CampaignRead:
    """Cancel a draft or active campaign (its items stay, nothing is remediated); 409 when
    it is already closed or cancelled."""
    campaign = service.cancel_campaign(session, campaign_id=campaign_id,
                                       reason=body.reason if body else None,
                                       actor=caller.actor, clock=clock)
    return CampaignRead.model_validate(campaign)
