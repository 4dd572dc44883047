"""HR feed runs and their changes, as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

FeedMode = Literal["snapshot", "delta"]
RunState = Literal["running", "held", "applied", "rejected", "failed"]
ChangeKind = Literal["joiner", "mover", "leaver", "rehire", "conversion", "update"]


class RowErrorOut(ReadModel):
    row: int
    column: str | None
    message: str
    employee_id: str | None = None


class FeedRunRead(ReadModel):
    id: uuid.UUID
    source_id: uuid.UUID
    mode: str
    channel: str
    file_name: str | None
    file_sha256: str | None
    state: str
    started_at: datetime
    finished_at: datetime | None
    started_by: str | None
    counts: dict[str, Any] = Field(description="rows, joiners, movers, leavers, rehires, "
                                   "conversions, updates, unchanged, rejected")
    errors: list[RowErrorOut] = Field(description="Rejected rows, with row and column")
    hold_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


FeedRunPage = PageOut[FeedRunRead]


class FeedRunFilter(ListParams):
    source_id: uuid.UUID | None = None
    state: RunState | None = None


class FeedChangeRead(ReadModel):
    id: uuid.UUID
    seq: int
    row_number: int | None
    employee_id: str
    identity_id: uuid.UUID | None
    kind: str
    changed: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    state: str
    applied_at: datetime | None


FeedChangePage = PageOut[FeedChangeRead]


class FeedChangeFilter(ListParams):
    kind: ChangeKind | None = None


class DecisionIn(StrictIn):
    note: str | None = Field(default=None, max_length=2000)
