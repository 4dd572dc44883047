"""Approval schemas: the approver's inbox, decisions, delegations and authority levels."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

RiskLevel = Literal["low", "medium", "high", "critical"]
StepState = Literal["pending", "waiting", "approved", "rejected", "cancelled", "skipped"]


class DecisionIn(StrictIn):
    """An approver's decision on one step. A rejection must say why."""

    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=4000,
                                description="Mandatory when rejecting; shown to the requester")


class ApproverOut(ReadModel):
    identity_id: uuid.UUID
    origin: str
    added_at: datetime


class ApprovalOut(ReadModel):
    id: uuid.UUID
    approver_id: uuid.UUID
    on_behalf_of_id: uuid.UUID | None
    decision: str
    comment: str | None
    authority: str | None
    decided_at: datetime


class StepOut(BaseModel):
    id: uuid.UUID
    line_id: uuid.UUID
    stage: int
    kind: str
    label: str
    mode: str
    required_approvals: int
    group_id: uuid.UUID | None
    state: str
    activated_at: datetime | None
    due_at: datetime | None
    escalation_level: int
    decided_at: datetime | None
    approvers: list[ApproverOut]
    approvals: list[ApprovalOut]


class LineOut(BaseModel):
    id: uuid.UUID
    number: str
    action: str
    role_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None
    item_name: str | None
    risk: str
    privileged: bool
    state: str
    valid_from: datetime | None
    valid_until: datetime | None
    mitigating_control: str | None
    decision: dict[str, Any] = Field(
        description="The policy decision the line was submitted with (risk, SoD context)")


class RequestOut(BaseModel):
    id: uuid.UUID
    number: str
    state: str
    urgent: bool
    requester_id: uuid.UUID
    beneficiary_id: uuid.UUID
    form_data: dict[str, Any]
    submitted_at: datetime | None


class ApprovalItem(BaseModel):
    """One approval step with the line and request it is about."""

    step: StepOut
    line: LineOut
    request: RequestOut
    due_at: datetime | None


ApprovalPage = PageOut[ApprovalItem]


class ApprovalFilter(ListParams):
    state: StepState | None = Field(default=None, description="Step state")
    identity_id: uuid.UUID | None = Field(
        default=None, description="Steps this person is an approver of (readers only)")
    line_id: uuid.UUID | None = None


class DelegationCreate(StrictIn):
    """Let ``delegate_id`` decide the caller's approvals for a while, up to ``max_risk``."""

    delegate_id: uuid.UUID
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime
    max_risk: RiskLevel = "medium"
    reason: str | None = Field(default=None, max_length=2000)


class DelegationRead(ReadModel):
    id: uuid.UUID
    delegator_id: uuid.UUID
    delegate_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    max_risk: str
    reason: str | None
    revoked_at: datetime | None
    created_at: datetime


DelegationPage = PageOut[DelegationRead]


class DelegationFilter(ListParams):
    delegator_id: uuid.UUID | None = None
    delegate_id: uuid.UUID | None = None
    active: bool | None = Field(default=None,
                                description="true: in force now; false: ended, revoked or future")


class AuthoritySet(StrictIn):
    max_risk: RiskLevel = Field(
        description="The person may approve an urgent request's line alone up to this risk")


class AuthorityRead(ReadModel):
    id: uuid.UUID
    identity_id: uuid.UUID
    max_risk: str
    granted_by: str | None
    created_at: datetime
    updated_at: datetime


AuthorityPage = PageOut[AuthorityRead]
