"""/certification/schedules: recurring campaigns (define, change, read, run now, their
campaigns)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from certification import schedules as service
from certification.models import CampaignSchedule
from certification.schemas_campaigns import CampaignPage, CampaignRead
from certification.schemas_schedules import (
    DEFINITION_FIELDS,
    ScheduleCreate,
    ScheduleFilter,
    SchedulePage,
    ScheduleRead,
    ScheduleUpdate,
)
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import ListParams, problem_responses

router = APIRouter(prefix="/certification/schedules", tags=["certification"])

# Administrators define, change and run schedules; administrators and auditors read them.
Admin = Annotated[Caller, Depends(require("certification:admin"))]
Reader = Annotated[Caller, Depends(require("certification:read", "certification:admin"))]

_DEFAULTS: dict[str, Any] = {
    "description": None, "scope": {}, "fallbacks": [], "fallback_group_id": None,
    "reminder_days": [], "escalate_after_days": None, "deadline_action": "escalate"}
_COLUMNS = ("id", "name", "recurrence", "time_zone", "duration_days", "enabled",
            "next_run_at", "last_run_at", "last_campaign_id", "last_error", "created_by",
            "created_at", "updated_at")


def _read(schedule: CampaignSchedule) -> ScheduleRead:
    stored = schedule.definition or {}
    definition = {key: stored.get(key, _DEFAULTS.get(key)) for key in DEFINITION_FIELDS}
    return ScheduleRead.model_validate({
        **definition, **{c: getattr(schedule, c) for c in _COLUMNS},
        "upcoming": service.upcoming(schedule)})


@router.post("", status_code=201, response_model=ScheduleRead,
             responses=problem_responses(409))
def create_schedule(session: DbSession, caller: Admin, clock: ClockDep,
                    body: ScheduleCreate) -> ScheduleRead:
    """A recurring campaign: its definition, a recurrence (preset or cron) in a time zone
    and the duration of each campaign. 422 for a bad definition, recurrence or time zone, a
    duration that would make consecutive campaigns overlap, a first_run_at in the past; 409
    when the name is taken."""
    return _read(service.create_schedule(session, schedule_in=body, actor=caller.actor,
                                         clock=clock))


@router.get("", response_model=SchedulePage, responses=problem_responses())
def list_schedules(session: DbSession, caller: Reader,
                   filters: Annotated[ScheduleFilter, Query()]) -> SchedulePage:
    """Schedules, optionally only the enabled (or disabled) ones."""
    page = service.list_schedules(session, filters=filters)
    return SchedulePage(items=[_read(s) for s in page.items], next_cursor=page.next_cursor)


@router.get("/{schedule_id}", response_model=ScheduleRead, responses=problem_responses(404))
def get_schedule(session: DbSession, caller: Reader, schedule_id: uuid.UUID) -> ScheduleRead:
    """One schedule with its next occurrences and the outcome of its last run."""
    return _read(service.get_schedule(session, schedule_id=schedule_id))


@router.patch("/{schedule_id}", response_model=ScheduleRead,
              responses=problem_responses(404, 409))
def update_schedule(session: DbSession, caller: Admin, clock: ClockDep,
                    schedule_id: uuid.UUID, body: ScheduleUpdate) -> ScheduleRead:
    """Change the definition, recurrence, time zone, duration or name, or enable and
    disable; next_run_at is recomputed when the timing changes. Campaigns already made stay
    as they are. 422 and 409 as at creation."""
    return _read(service.update_schedule(session, schedule_id=schedule_id, schedule_in=body,
                                         actor=caller.actor, clock=clock))


@router.post("/{schedule_id}/run", status_code=201, response_model=CampaignRead,
             responses=problem_responses(404, 409))
def run_schedule(session: DbSession, caller: Admin, clock: ClockDep,
                 schedule_id: uuid.UUID) -> CampaignRead:
    """Launch a campaign of the schedule now, by hand (enabled or not), for duration_days;
    it stands for a due occurrence that keeps failing. 409 when its scope is already under
    review in an active campaign, 422 when the definition is no longer valid: nothing is
    created."""
    return CampaignRead.model_validate(service.run_now(
        session, schedule_id=schedule_id, actor=caller.actor, clock=clock))


@router.get("/{schedule_id}/campaigns", response_model=CampaignPage,
            responses=problem_responses(404))
def list_schedule_campaigns(session: DbSession, caller: Reader, schedule_id: uuid.UUID,
                            page: Annotated[ListParams, Query()]) -> CampaignPage:
    """The campaigns the schedule made, by the job or by hand."""
    found = service.list_schedule_campaigns(session, schedule_id=schedule_id, page=page)
    return CampaignPage(items=[CampaignRead.model_validate(c) for c in found.items],
                        next_cursor=found.next_cursor)
