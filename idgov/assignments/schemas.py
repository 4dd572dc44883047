"""Assignment schemas: who holds which role or entitlement, from when until when, and why."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

AssignmentSource = Literal["request", "birthright", "admin", "aggregation"]


class AssignmentCreate(StrictIn):
    """An administrator's grant: exactly one of ``role_id`` and ``entitlement_id``."""

    identity_id: uuid.UUID
    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    reason: str = Field(min_length=1, max_length=2000,
                        description="Why this access is granted; kept in the audit trail")
    valid_from: AwareDatetime | None = Field(default=None, description="Default: now")
    valid_until: AwareDatetime | None = Field(
        default=None,
        description="End of the grant; default: open-ended, or the entitlement's maximum "
                    "duration when it has one",
    )

    @model_validator(mode="after")
    def _exactly_one_target(self) -> AssignmentCreate:
        if (self.role_id is None) == (self.entitlement_id is None):
            raise ValueError("give exactly one of role_id and entitlement_id")
        return self


class AssignmentRevoke(StrictIn):
    reason: str = Field(min_length=1, max_length=2000,
                        description="Why the access is taken away; kept in the audit trail")


class AssignmentRead(ReadModel):
    id: uuid.UUID
    identity_id: uuid.UUID
    role_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None
    source: str
    reason: str | None
    request_line_id: uuid.UUID | None
    granted_by: str | None
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    last_certified_at: datetime | None
    last_certified_by: str | None
    created_at: datetime
    updated_at: datetime


AssignmentPage = PageOut[AssignmentRead]


class AssignmentFilter(ListParams):
    identity_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    source: AssignmentSource | None = None
    active: bool | None = Field(
        default=None,
        description="true: in force now (started, not expired, not revoked); false: the rest",
    )
