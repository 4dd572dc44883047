"""Provisioning schemas: the operations recorded for changes of effective access."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel

OperationState = Literal["pending", "running", "succeeded", "failed", "cancelled"]
OperationCause = Literal["assignment", "catalog_change", "expiry"]
OperationAction = Literal["grant", "revoke"]


class OperationRead(ReadModel):
    id: uuid.UUID
    idempotency_key: str
    identity_id: uuid.UUID
    application_id: uuid.UUID
    entitlement_id: uuid.UUID
    action: str
    state: str
    cause: str
    cause_id: str | None
    assignment_id: uuid.UUID | None
    request_line_id: uuid.UUID | None
    attempts: int
    last_error: str | None
    detail: dict[str, Any]
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


OperationPage = PageOut[OperationRead]


class OperationFilter(ListParams):
    identity_id: uuid.UUID | None = None
    request_line_id: uuid.UUID | None = None
    assignment_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    state: OperationState | None = None
    cause: OperationCause | None = None
    action: OperationAction | None = Field(default=None, description="grant or revoke")
