"""Recurring campaign schemas: a campaign's definition without its dates, and when it recurs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from certification.schemas_campaigns import (
    CampaignKind,
    DeadlineAction,
    Fallback,
    ScopeIn,
)
from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

# The campaign name is "<schedule name> <local date>": 11 characters are kept for the date.
NAME_MAX = 188
DEFINITION_FIELDS = ("kind", "description", "scope", "fallbacks", "fallback_group_id",
                     "reminder_days", "escalate_after_days", "deadline_action")
_RECURRENCE = ("A preset (monthly, quarterly, semiannually, yearly: local midnight on the 1st "
               "of every month / of Jan, Apr, Jul, Oct / of Jan and Jul / of Jan) or a "
               "five-field cron expression (minute hour day-of-month month day-of-week), "
               "e.g. '0 6 * * MON', read in time_zone")


class ScheduleCreate(StrictIn):
    """A recurring campaign: each occurrence creates a campaign of this definition named
    "<name> <local date>", starting at the occurrence and ending ``duration_days`` later,
    and launches it."""

    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=2000)
    kind: CampaignKind = Field(description="As a campaign's kind")
    scope: ScopeIn = Field(default_factory=ScopeIn)
    fallbacks: list[Fallback] = Field(default_factory=list)
    fallback_group_id: uuid.UUID | None = None
    reminder_days: list[int] = Field(default_factory=list,
                                     description="Remind reviewers this many days before each "
                                                 "campaign's deadline")
    escalate_after_days: int | None = Field(default=None, ge=0)
    deadline_action: DeadlineAction = "escalate"
    recurrence: str = Field(min_length=1, max_length=200, description=_RECURRENCE)
    time_zone: str = Field(default="UTC", min_length=1, max_length=64,
                           description="IANA time zone the recurrence is read in, e.g. "
                                       "Europe/Paris (clock changes follow Debian cron)")
    duration_days: int = Field(description="Days from an occurrence to its campaign's "
                               "deadline (same local time); at least 1 and shorter than the "
                               "time between two occurrences")
    first_run_at: AwareDatetime | None = Field(
        default=None, description="The schedule starts at the first occurrence at or after "
        "this instant (default: now); not in the past")
    enabled: bool = True


class ScheduleUpdate(StrictIn):
    """Partial update: the fields given change. A new recurrence, time zone or
    ``first_run_at``, or enabling the schedule, recomputes ``next_run_at`` (from now, or from
    ``first_run_at``); disabling clears it."""

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=2000)
    kind: CampaignKind | None = None
    scope: ScopeIn | None = None
    fallbacks: list[Fallback] | None = None
    fallback_group_id: uuid.UUID | None = None
    reminder_days: list[int] | None = None
    escalate_after_days: int | None = Field(default=None, ge=0)
    deadline_action: DeadlineAction | None = None
    recurrence: str | None = Field(default=None, min_length=1, max_length=200,
                                   description=_RECURRENCE)
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    duration_days: int | None = None
    first_run_at: AwareDatetime | None = None
    enabled: bool | None = None


class ScheduleRead(ReadModel):
    id: uuid.UUID
    name: str
    description: str | None
    kind: str
    scope: dict[str, Any]
    fallbacks: list[Any]
    fallback_group_id: uuid.UUID | None
    reminder_days: list[Any]
    escalate_after_days: int | None
    deadline_action: str
    recurrence: str
    time_zone: str
    duration_days: int
    enabled: bool
    next_run_at: datetime | None = Field(description="When the next campaign is launched "
                                         "(UTC); null while disabled")
    upcoming: list[datetime] = Field(description="The next occurrences from next_run_at on "
                                     "(UTC), to check a recurrence")
    last_run_at: datetime | None
    last_campaign_id: uuid.UUID | None
    last_error: str | None = Field(description="Why the last automatic launch failed (retried "
                                   "at every run); cleared by a launch")
    created_by: str | None
    created_at: datetime
    updated_at: datetime


SchedulePage = PageOut[ScheduleRead]


class ScheduleFilter(ListParams):
    enabled: bool | None = None
