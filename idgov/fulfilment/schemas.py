"""Fulfilment task schemas: the task list of a resolution group, completing and failing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

TaskState = Literal["open", "completed", "failed", "cancelled"]
# What a person may say went wrong; data_error unless they say otherwise.
FailureCategory = Literal["data_error", "policy_violation", "not_supported"]


class TaskRead(ReadModel):
    id: uuid.UUID
    operation_id: uuid.UUID
    application_id: uuid.UUID
    group_id: uuid.UUID | None
    identity_id: uuid.UUID
    summary: str = Field(description="What to do, for whom, in which application")
    state: str
    due_at: datetime | None
    escalation_level: int
    completed_by_id: uuid.UUID | None
    note: str | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


TaskPage = PageOut[TaskRead]


class TaskFilter(ListParams):
    state: TaskState | None = Field(default="open", description="open unless given")
    group_id: uuid.UUID | None = None
    application_id: uuid.UUID | None = None
    identity_id: uuid.UUID | None = Field(default=None, description="For whom")


class CompleteIn(StrictIn):
    note: str | None = Field(default=None, max_length=4000,
                             description="What was done (never a password)")


class FailIn(StrictIn):
    note: str = Field(min_length=1, max_length=4000,
                      description="Why the task could not be carried out")
    category: FailureCategory = Field(
        default="data_error",
        description="data_error: the data is wrong or missing in the target (default); "
                    "policy_violation: the target's rules or owners refuse it; "
                    "not_supported: the application cannot do this")
