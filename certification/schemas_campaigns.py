"""Campaign schemas: what an administrator defines, and what everyone reads back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

CampaignKind = Literal["manager", "owner", "application", "privileged", "composition", "micro"]
CampaignState = Literal["draft", "active", "closed", "cancelled"]
Fallback = Literal["manager", "manager_of_manager", "owner", "application_owner", "group"]
DeadlineAction = Literal["revoke", "keep", "escalate"]
Risk = Literal["low", "medium", "high", "critical"]
Source = Literal["request", "birthright", "admin", "aggregation"]


class ScopeIn(StrictIn):
    """Filters over what is reviewed and whose access, all combined (AND); an empty list
    does not filter. Roles, entitlements and applications together name what is reviewed
    (any of them matches; a role matches an application when it reaches an entitlement of
    it)."""

    application_ids: list[uuid.UUID] = Field(default_factory=list)
    entitlement_ids: list[uuid.UUID] = Field(default_factory=list)
    role_ids: list[uuid.UUID] = Field(default_factory=list)
    assignment_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Only these assignments (micro-certifications)")
    departments: list[str] = Field(default_factory=list,
                                   description="Only the access of people of these departments")
    identity_ids: list[uuid.UUID] = Field(default_factory=list,
                                          description="Only the access of these people")
    min_risk: Risk | None = Field(default=None, description="Only access of this risk or more "
                                                            "(a role: the highest it reaches)")
    privileged_only: bool = False
    sources: list[Source] = Field(default_factory=list,
                                  description="Only access granted this way")

    def as_document(self) -> dict[str, Any]:
        """The stored form: ids as text, empty filters left out."""
        raw = self.model_dump(mode="json", exclude_defaults=True)
        return {k: v for k, v in raw.items() if v not in ([], None, False)}


class CampaignCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    kind: CampaignKind = Field(description="manager: each manager reviews their reports' "
                               "access; owner: each role or entitlement owner reviews its "
                               "holders; application: the application owner reviews "
                               "everything in it; privileged: privileged or high-risk access "
                               "only, reviewed by managers; composition: role owners confirm what "
                               "each role includes (one item per role -> entitlement and "
                               "role -> included role link; scope role_ids, entitlement_ids, "
                               "application_ids, min_risk, privileged_only)")
    scope: ScopeIn = Field(default_factory=ScopeIn)
    fallbacks: list[Fallback] = Field(
        default_factory=list, description="Who reviews, in order, when the kind's reviewer is "
        "missing, inactive or the person themselves (group: fallback_group_id)")
    fallback_group_id: uuid.UUID | None = None
    starts_at: datetime | None = Field(default=None, description="Default: now")
    launch: Literal["manual", "scheduled"] = Field(
        default="manual", description="manual: stays a draft until launched by hand (POST "
        ".../{id}/launch); scheduled: launched automatically once starts_at has come (the "
        "periodic job certification.scheduled_launch, every 15 minutes), trigger 'schedule'; "
        "needs a starts_at in the future. A scheduled launch that fails (overlap, definition "
        "no longer valid) leaves the draft with counts.launch_error and is retried")
    deadline_at: datetime
    reminder_days: list[int] = Field(default_factory=list,
                                     description="Remind reviewers this many days before the "
                                                 "deadline")
    escalate_after_days: int | None = Field(default=None, ge=0,
                                            description="Escalate a reviewer's open items this "
                                                        "many days after the start")
    deadline_action: DeadlineAction = Field(default="escalate",
                                            description="What becomes of undecided items at "
                                                        "the deadline")


class CampaignRead(ReadModel):
    id: uuid.UUID
    name: str
    description: str | None
    kind: str
    state: str = Field(description="draft, active (items generated), closed, cancelled")
    scope: dict[str, Any]
    fallbacks: list[Any]
    fallback_group_id: uuid.UUID | None
    starts_at: datetime
    deadline_at: datetime
    reminder_days: list[Any]
    escalate_after_days: int | None
    deadline_action: str
    trigger: str
    trigger_ref: str | None
    created_by: str | None
    created_at: datetime
    generated_at: datetime | None
    closed_at: datetime | None
    counts: dict[str, Any] = Field(description="At generation: items, reviewers, unresolved "
                                   "(no reviewer found), by_rule, sod_conflicts, privileged, "
                                   "high_risk, items_digest")


CampaignPage = PageOut[CampaignRead]


class CampaignFilter(ListParams):
    state: CampaignState | None = None
    kind: CampaignKind | None = None


class CampaignCancel(StrictIn):
    reason: str | None = Field(default=None, max_length=2000)
