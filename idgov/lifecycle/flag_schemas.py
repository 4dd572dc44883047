"""Review flag schemas: requested access flagged for review after a move, and decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

FlagState = Literal["open", "kept", "revoked", "closed"]
FlagDecision = Literal["kept", "revoked"]


class ReviewFlagRead(ReadModel):
    id: uuid.UUID
    identity_id: uuid.UUID = Field(description="The person who moved")
    assignment_id: uuid.UUID = Field(description="The requested access to review")
    reviewer_id: uuid.UUID | None = Field(
        description="Who decides (the new manager); none: administrators decide")
    change_id: uuid.UUID | None = Field(description="The HR feed change that caused the flag")
    reason: str
    state: str = Field(description="open, kept, revoked, or closed (the access ended "
                                   "otherwise, e.g. the person left)")
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None


ReviewFlagPage = PageOut[ReviewFlagRead]


class ReviewFlagFilter(ListParams):
    state: FlagState | None = Field(default="open", description="open unless given")
    identity_id: uuid.UUID | None = Field(default=None, description="The person who moved")
    reviewer_id: uuid.UUID | None = None


class FlagDecisionIn(StrictIn):
    decision: FlagDecision = Field(description="kept: the access stays (recorded as "
                                               "certified); revoked: it ends now")
    comment: str | None = Field(default=None, max_length=2000,
                                description="Why (kept in the audit trail)")
