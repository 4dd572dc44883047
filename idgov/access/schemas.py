"""Effective access of one identity: what they hold, through which paths, and SoD conflicts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from idgov.catalog.schemas import EntitlementSummary, RoleSummary
from idgov.web.schemas import StrictIn


class AccessQuery(StrictIn):
    as_of: AwareDatetime | None = Field(
        default=None, description="Point in time (ISO 8601 with offset); default now")


class PathStepOut(BaseModel):
    type: Literal["role", "entitlement"]
    id: uuid.UUID
    name: str


class GrantOut(BaseModel):
    """One reason the identity holds something: the assignment and the path from it."""

    assignment_id: uuid.UUID
    source: str
    path: list[PathStepOut]


class EntitlementAccess(BaseModel):
    entitlement: EntitlementSummary
    grants: list[GrantOut]


class RoleAccess(BaseModel):
    role: RoleSummary
    grants: list[GrantOut]


class HeldItemOut(BaseModel):
    type: Literal["role", "entitlement"]
    id: uuid.UUID
    name: str
    grants: list[GrantOut]


class SodRuleRef(BaseModel):
    id: uuid.UUID
    name: str
    severity: str


class SodExceptionRef(BaseModel):
    id: uuid.UUID
    expires_at: datetime
    control: str


class SodViolationOut(BaseModel):
    """A broken SoD rule, with the held items of each side and how each is held."""

    rule: SodRuleRef
    side_a: list[HeldItemOut]
    side_b: list[HeldItemOut]
    mitigated: bool = Field(description="An active exception covers it")
    exception: SodExceptionRef | None
    explanation: str


class AccessRead(BaseModel):
    identity_id: uuid.UUID
    as_of: datetime
    policy_version: str = Field(description="Version of the policy snapshot evaluated")
    entitlements: list[EntitlementAccess]
    roles: list[RoleAccess] = Field(description="Roles held, directly or by inclusion")
    sod_violations: list[SodViolationOut]
