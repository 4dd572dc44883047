"""Schemas of aggregation and reconciliation runs and of the drift they find."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

RunKind = Literal["aggregation", "reconciliation"]
RunState = Literal["running", "succeeded", "failed"]
DriftKind = Literal["orphan_account", "unassigned_membership", "missing_grant",
                    "missing_account", "disabled_account_of_active_identity",
                    "enabled_account_of_inactive_identity"]


class ReconcileIn(StrictIn):
    remediate: bool = Field(
        default=False,
        description="Also queue the provisioning operations that fix what is found (cause "
                    "'reconciliation'); memberships nobody assigned are revoked only when "
                    "the application's remove_unassigned_access says so")


class RunRead(ReadModel):
    id: uuid.UUID
    application_id: uuid.UUID
    kind: str
    remediate: bool
    state: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None = Field(description="Why a failed run failed: the target's error, "
                                          "prefixed by its category")
    started_by: str | None


RunPage = PageOut[RunRead]


class RunFilter(ListParams):
    application_id: uuid.UUID | None = None
    kind: RunKind | None = None
    state: RunState | None = None


class DriftRead(ReadModel):
    id: uuid.UUID
    run_id: uuid.UUID
    kind: str
    account_native_id: str | None
    entitlement_native_id: str | None
    identity_id: uuid.UUID | None
    account_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None
    detail: dict[str, Any]
    remediation_operation_id: uuid.UUID | None = Field(
        description="The operation that fixes it: queued by this run, or already open when "
                    "the run found it")


DriftPage = PageOut[DriftRead]


class DriftFilter(ListParams):
    kind: DriftKind | None = None
    identity_id: uuid.UUID | None = None
