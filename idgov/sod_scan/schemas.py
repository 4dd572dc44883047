"""Detective SoD scan: query and answer."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from idgov.access.schemas import HeldItemOut, SodExceptionRef
from idgov.web.schemas import StrictIn


class ScanQuery(StrictIn):
    as_of: AwareDatetime | None = Field(
        default=None, description="Point in time (ISO 8601 with offset); default now")
    rule_id: uuid.UUID | None = Field(default=None, description="Only this rule")
    identity_id: uuid.UUID | None = Field(default=None, description="Only this identity")
    include_mitigated: bool = Field(
        default=True, description="Also list violations an active exception covers")


class IdentityRef(BaseModel):
    id: uuid.UUID
    employee_id: str
    display_name: str


class ScanRuleRef(BaseModel):
    id: uuid.UUID
    name: str
    severity: str


class ScanViolationOut(BaseModel):
    """One identity breaking one rule: how each side is held, and any exception."""

    identity: IdentityRef
    rule: ScanRuleRef
    side_a: list[HeldItemOut]
    side_b: list[HeldItemOut]
    mitigated: bool = Field(description="An active exception covers it")
    exception: SodExceptionRef | None
    explanation: str


class ScanOut(BaseModel):
    as_of: datetime
    policy_version: str = Field(description="Version of the policy snapshot evaluated")
    count: int
    items: list[ScanViolationOut]
