"""Recurring campaigns: define, change and read schedules, launch an occurrence by hand.

A schedule holds a campaign definition (every field of a campaign but its name and dates),
a recurrence read in an IANA time zone (:mod:`certification.recurrence`) and a duration.
Each occurrence becomes a campaign named "<schedule name> <local date>", starting at the
occurrence and ending ``duration_days`` later at the same local time, with trigger
``recurring``, ``trigger_ref`` and ``schedule_id`` naming the schedule, created and launched
through :mod:`certification.campaigns` (its definition check, overlap check and audit
events). The periodic job that launches due occurrences is :mod:`certification.recurring`.

Validation (InvalidInput, every problem at once, nothing stored): the definition as a
campaign's (:func:`certification.campaigns.check_definition`), an unknown preset or an
invalid five-field cron expression, an unknown time zone, a duration under a day or not
shorter than the time between two occurrences over the next two years (consecutive
campaigns of a schedule never overlap), a ``first_run_at`` in the past. A name already taken
is a Conflict.

Row rules: none. Schedules are administered (``certification:admin``) and read
(``certification:read``) whole; the endpoints check the capabilities.

Audit (object ``campaign_schedule``): ``campaign_schedule.create``,
``campaign_schedule.update``, ``campaign_schedule.run`` (a campaign launched, by the job or
by hand: context ``campaign_id``, ``occurrence``, ``by_hand``), and
``campaign_schedule.run_failed`` (see :mod:`certification.recurring`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from itertools import islice
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import campaigns, recurrence
from certification.models import Campaign, CampaignSchedule
from certification.schemas_campaigns import CampaignCreate
from certification.schemas_schedules import (
    DEFINITION_FIELDS,
    ScheduleCreate,
    ScheduleFilter,
    ScheduleUpdate,
)
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, FieldError, InvalidInput, NotFound
from idgov.types import Actor
from idgov.web.schemas import ListParams

TRIGGER = "recurring"
OBJECT_TYPE = "campaign_schedule"
UPCOMING = 3
_NOT_NULL = ("name", "kind", "scope", "fallbacks", "reminder_days", "deadline_action",
             "recurrence", "time_zone", "duration_days", "enabled")
_TIMING = ("recurrence", "time_zone", "first_run_at")


def _definition_value(key: str, value: Any) -> Any:
    """A definition field in its stored (JSON) form, as a campaign stores it."""
    if key == "scope":
        return value.as_document()
    if key == "fallback_group_id":
        return None if value is None else str(value)
    if key == "reminder_days":
        return sorted(set(value), reverse=True)
    if key == "fallbacks":
        return list(value)
    return value


def _check(session: Session, *, definition: dict[str, Any], recurrence_text: str,
           time_zone: str, duration_days: int, start: datetime,
           first_run_at: datetime | None, now: datetime) -> None:
    """InvalidInput with every problem of the definition and of the timing."""
    errors: list[FieldError] = []
    group = definition.get("fallback_group_id")
    try:
        campaigns.check_definition(
            session, kind=definition["kind"], scope=dict(definition.get("scope") or {}),
            fallbacks=list(definition.get("fallbacks") or []),
            fallback_group_id=uuid.UUID(str(group)) if group else None)
    except InvalidInput as error:
        errors.extend(error.errors)
    if first_run_at is not None and first_run_at < now:
        errors.append(FieldError("first_run_at", "must not be in the past"))
    errors.extend(FieldError(field, message) for field, message in recurrence.check(
        recurrence_text, time_zone, duration_days, start=start))
    if errors:
        raise InvalidInput("the schedule is not valid", errors=errors)


def _name_taken(session: Session, name: str, other_than: uuid.UUID | None = None) -> None:
    stmt = select(CampaignSchedule.id).where(CampaignSchedule.name == name)
    if other_than is not None:
        stmt = stmt.where(CampaignSchedule.id != other_than)
    if session.scalar(stmt) is not None:
        raise Conflict(f"a campaign schedule named {name!r} already exists", field="name")


def create_schedule(session: Session, *, schedule_in: ScheduleCreate, actor: Actor,
                    clock: Clock) -> CampaignSchedule:
    """A new schedule; its first campaign is launched at the first occurrence at or after
    ``first_run_at`` (default: now), when enabled. InvalidInput (422) or Conflict (409) for
    a name taken, see the module."""
    now = clock.now()
    definition = {key: _definition_value(key, getattr(schedule_in, key))
                  for key in DEFINITION_FIELDS}
    start = schedule_in.first_run_at or now
    _check(session, definition=definition, recurrence_text=schedule_in.recurrence,
           time_zone=schedule_in.time_zone, duration_days=schedule_in.duration_days,
           start=start, first_run_at=schedule_in.first_run_at, now=now)
    _name_taken(session, schedule_in.name)
    schedule = CampaignSchedule(
        id=uuid.uuid4(), name=schedule_in.name, definition=definition,
        recurrence=recurrence.normal_form(schedule_in.recurrence), time_zone=schedule_in.time_zone,
        duration_days=schedule_in.duration_days, enabled=schedule_in.enabled,
        next_run_at=(recurrence.first_from(schedule_in.recurrence, schedule_in.time_zone, start)
                     if schedule_in.enabled else None),
        created_by=actor.label, created_at=now, updated_at=now)
    session.add(schedule)
    session.flush()
    record(session, actor=actor, action="campaign_schedule.create", object_type=OBJECT_TYPE,
           object_id=schedule.id, clock=clock, after=snapshot(schedule))
    return schedule


def _locked(session: Session, schedule_id: uuid.UUID) -> CampaignSchedule:
    stmt = select(CampaignSchedule).where(CampaignSchedule.id == schedule_id).with_for_update()
    found = session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
    if found is None:
        raise NotFound(f"campaign schedule {schedule_id} does not exist")
    return found


def update_schedule(session: Session, *, schedule_id: uuid.UUID, schedule_in: ScheduleUpdate,
                    actor: Actor, clock: Clock) -> CampaignSchedule:
    """Change the given fields (see :class:`ScheduleUpdate` for ``next_run_at``); the
    merged schedule is validated as at creation. Campaigns already made are not touched."""
    schedule = _locked(session, schedule_id)
    given = schedule_in.model_fields_set
    nulls = [f for f in _NOT_NULL if f in given and getattr(schedule_in, f) is None]
    if nulls:
        raise InvalidInput("these fields cannot be null",
                           errors=[FieldError(f, "cannot be null") for f in nulls])
    now = clock.now()
    definition = dict(schedule.definition or {})
    definition.update({key: _definition_value(key, getattr(schedule_in, key))
                       for key in DEFINITION_FIELDS if key in given})
    recurrence_text = schedule_in.recurrence or schedule.recurrence
    time_zone = schedule_in.time_zone or schedule.time_zone
    duration = (schedule_in.duration_days if schedule_in.duration_days is not None
                else schedule.duration_days)
    enabled = schedule.enabled if schedule_in.enabled is None else schedule_in.enabled
    retime = any(f in given for f in _TIMING) or (enabled and not schedule.enabled)
    # A new timing starts from first_run_at (or now); otherwise the overlap check starts
    # from the pending occurrence.
    start = (schedule_in.first_run_at or now) if retime else (schedule.next_run_at or now)
    _check(session, definition=definition, recurrence_text=recurrence_text,
           time_zone=time_zone, duration_days=duration, start=start,
           first_run_at=schedule_in.first_run_at, now=now)
    if schedule_in.name is not None:
        _name_taken(session, schedule_in.name, other_than=schedule.id)
    before = snapshot(schedule)
    if schedule_in.name is not None:
        schedule.name = schedule_in.name
    schedule.definition = definition
    schedule.recurrence = recurrence.normal_form(recurrence_text)
    schedule.time_zone, schedule.duration_days, schedule.enabled = time_zone, duration, enabled
    if not enabled:
        schedule.next_run_at = None
    elif retime:
        schedule.next_run_at = recurrence.first_from(recurrence_text, time_zone, start)
    schedule.updated_at = now
    session.flush()
    record(session, actor=actor, action="campaign_schedule.update", object_type=OBJECT_TYPE,
           object_id=schedule.id, clock=clock, before=before, after=snapshot(schedule))
    return schedule


def get_schedule(session: Session, *, schedule_id: uuid.UUID) -> CampaignSchedule:
    """One schedule (NotFound when unknown)."""
    return get_or_404(session, CampaignSchedule, schedule_id, what="campaign schedule")


def list_schedules(session: Session, *, filters: ScheduleFilter) -> Page[CampaignSchedule]:
    """Schedules in id order, one page at a time, optionally enabled or disabled only."""
    stmt = select(CampaignSchedule)
    if filters.enabled is not None:
        stmt = stmt.where(CampaignSchedule.enabled.is_(filters.enabled))
    return paginate(session, stmt, CampaignSchedule, limit=filters.limit,
                    cursor=filters.cursor)


def list_schedule_campaigns(session: Session, *, schedule_id: uuid.UUID,
                            page: ListParams) -> Page[Campaign]:
    """The campaigns a schedule made (by the job or by hand), in id order."""
    get_schedule(session, schedule_id=schedule_id)
    stmt = select(Campaign).where(Campaign.schedule_id == schedule_id)
    return paginate(session, stmt, Campaign, limit=page.limit, cursor=page.cursor)


def upcoming(schedule: CampaignSchedule, count: int = UPCOMING) -> list[datetime]:
    """The next ``count`` occurrences from ``next_run_at`` on (none while disabled)."""
    if schedule.next_run_at is None:
        return []
    first = schedule.next_run_at
    return [first, *islice(recurrence.occurrences(schedule.recurrence, schedule.time_zone,
                                                  after=first), count - 1)]


def launch_occurrence(session: Session, *, schedule: CampaignSchedule, occurrence: datetime,
                      actor: Actor, clock: Clock, by_hand: bool) -> Campaign:
    """Create and launch the campaign of ``occurrence``; note it on the schedule (last run,
    last campaign, error cleared) and audit ``campaign_schedule.run``. Raises the domain
    errors of :func:`certification.campaigns.create_campaign` and ``launch`` (an overlap
    with an active campaign: Conflict), with nothing noted."""
    day = recurrence.local_date(occurrence, schedule.time_zone)
    ends = recurrence.deadline(occurrence, schedule.time_zone, schedule.duration_days)
    fields = {key: schedule.definition.get(key) for key in DEFINITION_FIELDS
              if schedule.definition.get(key) is not None}
    try:
        campaign_in = CampaignCreate.model_validate({
            **fields, "name": f"{schedule.name} {day.isoformat()}", "starts_at": occurrence,
            "deadline_at": ends})
    except ValidationError as error:  # a definition stored by an older version
        raise InvalidInput("the schedule's definition is no longer valid", errors=[
            FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in error.errors()
        ]) from error
    campaign = campaigns.create_campaign(session, campaign_in=campaign_in, actor=actor,
                                         clock=clock, trigger=TRIGGER,
                                         trigger_ref=str(schedule.id), schedule_id=schedule.id)
    campaigns.launch(session, campaign_id=campaign.id, actor=actor, clock=clock)
    now = clock.now()
    before = snapshot(schedule)
    schedule.last_run_at = now
    schedule.last_campaign_id = campaign.id
    schedule.last_error = None
    if schedule.next_run_at is not None and schedule.next_run_at <= now:
        # The due occurrence (and any missed before it) is served: on to the next future one.
        schedule.next_run_at = recurrence.next_after(schedule.recurrence, schedule.time_zone,
                                                     now)
    schedule.updated_at = now
    session.flush()
    record(session, actor=actor, action="campaign_schedule.run", object_type=OBJECT_TYPE,
           object_id=schedule.id, clock=clock, before=before, after=snapshot(schedule),
           context={"campaign_id": campaign.id, "occurrence": occurrence, "by_hand": by_hand})
    return campaign


def run_now(session: Session, *, schedule_id: uuid.UUID, actor: Actor,
            clock: Clock) -> Campaign:
    """Launch a campaign of the schedule now, enabled or not: it starts now and ends
    ``duration_days`` later. When an occurrence is due (being retried after a failure), this
    campaign stands for it and ``next_run_at`` moves to the next future occurrence;
    otherwise the recurrence is left as it is (a campaign still open at the next occurrence
    makes that one wait, noted, until it closes). Conflict (409) for an overlap with an
    active campaign, InvalidInput (422) for a definition no longer valid: nothing is kept."""
    schedule = _locked(session, schedule_id)
    return launch_occurrence(session, schedule=schedule, occurrence=clock.now(), actor=actor,
                             clock=clock, by_hand=True)
