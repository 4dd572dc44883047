"""Provisioning schemas: the operations recorded for changes of effective access, the failed
queue and the health of a target."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

OperationState = Literal["pending", "running", "succeeded", "retry_scheduled", "failed",
                         "cancelled", "rolled_back"]
OperationCause = Literal["assignment", "catalog_change", "expiry", "identity_change",
                         "reconciliation", "rollback", "lifecycle"]
OperationAction = Literal["create_account", "update_account", "enable_account",
                          "disable_account", "delete_account", "grant", "revoke"]
ErrorCategory = Literal["system_unavailable", "timeout", "throttled", "data_error",
                        "policy_violation", "authentication", "not_supported"]


class OperationRead(ReadModel):
    id: uuid.UUID
    idempotency_key: str
    identity_id: uuid.UUID
    application_id: uuid.UUID
    entitlement_id: uuid.UUID | None
    account_id: uuid.UUID | None
    action: str
    ordinal: int
    state: str
    cause: str
    cause_id: str | None
    assignment_id: uuid.UUID | None
    request_line_id: uuid.UUID | None
    attempts: int
    next_attempt_at: datetime | None
    claimed_by: str | None
    lease_until: datetime | None
    started_at: datetime | None
    last_error: str | None
    error_category: str | None
    resolution_group_id: uuid.UUID | None
    resolved_by: str | None
    resolution_note: str | None
    compensates_id: uuid.UUID | None
    detail: dict[str, Any]
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    waiting_reason: str | None = Field(
        default=None, description="Why an open operation is not running yet: its target's "
        "circuit breaker is open, it starts later, or it retries later")


OperationPage = PageOut[OperationRead]


class OperationFilter(ListParams):
    identity_id: uuid.UUID | None = None
    request_line_id: uuid.UUID | None = None
    assignment_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    state: OperationState | None = None
    cause: OperationCause | None = None
    application_id: uuid.UUID | None = None
    action: OperationAction | None = None


class FailedFilter(ListParams):
    application_id: uuid.UUID | None = None
    error_category: ErrorCategory | None = None
    resolution_group_id: uuid.UUID | None = None


class ResolveIn(StrictIn):
    note: str = Field(min_length=1, max_length=2000,
                      description="What was done by hand to carry the operation out")


class BreakerRead(ReadModel):
    state: Literal["closed", "open", "half_open"] = "closed"
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    next_probe_at: datetime | None = None
    last_error: str | None = None
    last_error_category: str | None = None
    last_success_at: datetime | None = None


class ConnectionCheck(ReadModel):
    ok: bool
    error_category: str | None = None
    error: str | None = None
    checked_at: datetime


class HealthRead(ReadModel):
    application_id: uuid.UUID
    connector_kind: str
    breaker: BreakerRead
    connection: ConnectionCheck
    waiting_operations: int = Field(description="Open operations not running yet")
    failed_operations: int

