"""Request schemas: what a person asks for, and the request as its people see it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from idgov.approvals.schemas import ApprovalOut
from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

RequestState = Literal["draft", "submitted", "pending_approval", "approved", "rejected",
                       "cancelled", "provisioning", "fulfilled", "partially_fulfilled",
                       "failed"]


class MitigationIn(StrictIn):
    """A mitigating control offered for a line that breaks an SoD rule allowing exceptions:
    its owner approves an extra step, and the exception is recorded until ``expires_at``."""

    control: str = Field(min_length=1, max_length=2000)
    owner_id: uuid.UUID = Field(description="The control's owner, who approves the exception")
    expires_at: AwareDatetime


class LineIn(StrictIn):
    """Grant or revoke exactly one role or one entitlement for the beneficiary."""

    action: Literal["grant", "revoke"] = "grant"
    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    valid_until: AwareDatetime | None = Field(default=None,
                                              description="End of a time-bound grant")
    duration_days: int | None = Field(default=None, ge=1, le=3650,
                                      description="Or: how long from the grant")
    mitigation: MitigationIn | None = None

    @model_validator(mode="after")
    def _check(self) -> LineIn:
        if (self.role_id is None) == (self.entitlement_id is None):
            raise ValueError("give exactly one of role_id and entitlement_id")
        if self.valid_until is not None and self.duration_days is not None:
            raise ValueError("give valid_until or duration_days, not both")
        if self.action == "revoke" and (self.valid_until or self.duration_days
                                        or self.mitigation):
            raise ValueError("a revoke line has no duration and no mitigation")
        return self


class RequestCreate(StrictIn):
    request_type: str = Field(min_length=1, max_length=64, description="The type's key")
    beneficiary_id: uuid.UUID | None = Field(
        default=None, description="Default: yourself; a manager may name a direct or "
                                  "indirect report")
    form_data: dict[str, Any] = Field(default_factory=dict,
                                      description="Checked against the type's form_schema")
    urgent: bool = False
    submit: bool = Field(default=True, description="false: keep a draft")
    lines: list[LineIn] = Field(min_length=1, max_length=50)


class RequestCancel(StrictIn):
    reason: str = Field(min_length=1, max_length=2000)



class StepOut(ReadModel):
    id: uuid.UUID
    stage: int
    kind: str
    label: str
    mode: str
    required_approvals: int
    state: str
    activated_at: datetime | None
    due_at: datetime | None
    escalation_level: int
    decided_at: datetime | None
    approvers: list[uuid.UUID]
    approvals: list[ApprovalOut]


class LineRead(ReadModel):
    id: uuid.UUID
    number: str
    action: str
    role_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None
    item_name: str | None
    assignment_id: uuid.UUID | None
    valid_from: datetime | None
    valid_until: datetime | None
    state: str
    state_reason: str | None
    risk: str
    privileged: bool
    fulfilment: str
    decision: dict[str, Any]
    mitigating_control: str | None
    control_owner_id: uuid.UUID | None
    exception_expires_at: datetime | None
    sod_exception_ids: list[Any]
    decided_at: datetime | None
    closed_at: datetime | None
    steps: list[StepOut]


class RequestRead(ReadModel):
    id: uuid.UUID
    number: str
    requester_id: uuid.UUID
    beneficiary_id: uuid.UUID
    request_type_id: uuid.UUID
    request_type: str
    form_data: dict[str, Any]
    urgent: bool
    state: str
    policy_version: str | None
    submitted_at: datetime | None
    closed_at: datetime | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    lines: list[LineRead]


class RequestSummary(ReadModel):
    id: uuid.UUID
    number: str
    requester_id: uuid.UUID
    beneficiary_id: uuid.UUID
    request_type_id: uuid.UUID
    state: str
    urgent: bool
    submitted_at: datetime | None
    closed_at: datetime | None
    created_at: datetime


RequestPage = PageOut[RequestSummary]


class RequestFilter(ListParams):
    state: RequestState | None = None
    beneficiary_id: uuid.UUID | None = None
    requester_id: uuid.UUID | None = None
