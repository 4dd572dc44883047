"""Catalog schemas: entitlements, roles and their composition, SoD rules and exceptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

EntitlementKind = Literal["group", "role", "app_role"]
Risk = Literal["low", "medium", "high", "critical"]
DataClassification = Literal["none", "pii", "regulated"]
RoleKind = Literal["business", "technical"]
Severity = Literal["low", "medium", "high", "critical"]

# --- entitlements -----------------------------------------------------------------------


class EntitlementCreate(StrictIn):
    application_id: uuid.UUID = Field(description="The application the entitlement lives in")
    native_id: str = Field(min_length=1, max_length=500,
                           description="Its id in the target (group DN, app role id); unique "
                                       "per application")
    name: str = Field(min_length=1, max_length=200)
    kind: EntitlementKind = "group"
    description: str | None = Field(default=None, max_length=2000)
    risk: Risk = "low"
    privileged: bool = False
    data_classification: DataClassification = "none"
    owner_id: uuid.UUID | None = None
    requestable: bool = True
    max_duration_days: int | None = Field(default=None, ge=1, le=3650)


class EntitlementUpdate(StrictIn):
    """Partial update. ``application_id`` cannot change: create a new entitlement instead."""

    native_id: str | None = Field(default=None, min_length=1, max_length=500)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: EntitlementKind | None = None
    description: str | None = Field(default=None, max_length=2000)
    risk: Risk | None = None
    privileged: bool | None = None
    data_classification: DataClassification | None = None
    owner_id: uuid.UUID | None = None
    requestable: bool | None = None
    max_duration_days: int | None = Field(default=None, ge=1, le=3650)


class EntitlementRead(ReadModel):
    id: uuid.UUID
    application_id: uuid.UUID
    native_id: str
    name: str
    kind: str
    description: str | None
    risk: str
    privileged: bool
    data_classification: str
    owner_id: uuid.UUID | None
    requestable: bool
    max_duration_days: int | None
    created_at: datetime
    updated_at: datetime


EntitlementPage = PageOut[EntitlementRead]


class EntitlementFilter(ListParams):
    application_id: uuid.UUID | None = None
    kind: EntitlementKind | None = None
    risk: Risk | None = None
    privileged: bool | None = None
    requestable: bool | None = None
    q: str | None = Field(default=None, description="Substring of the name or native id")


# --- roles --------------------------------------------------------------------------------


class RoleCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    kind: RoleKind = "business"
    description: str | None = Field(default=None, max_length=2000)
    owner_id: uuid.UUID | None = None
    requestable: bool = True


class RoleUpdate(StrictIn):
    """Partial update. ``requestable=false`` retires a role from the catalog."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: RoleKind | None = None
    description: str | None = Field(default=None, max_length=2000)
    owner_id: uuid.UUID | None = None
    requestable: bool | None = None


class RoleRead(ReadModel):
    id: uuid.UUID
    name: str
    kind: str
    description: str | None
    owner_id: uuid.UUID | None
    requestable: bool
    created_at: datetime
    updated_at: datetime


RolePage = PageOut[RoleRead]


class RoleFilter(ListParams):
    kind: RoleKind | None = None
    requestable: bool | None = None
    owner_id: uuid.UUID | None = None
    q: str | None = Field(default=None, description="Substring of the name or description")


class RoleSummary(ReadModel):
    id: uuid.UUID
    name: str
    kind: str


class EntitlementSummary(ReadModel):
    id: uuid.UUID
    name: str
    application_id: uuid.UUID
    native_id: str
    risk: str
    privileged: bool


class IncludedRoleLink(ReadModel):
    """An active role -> included role link."""

    link_id: uuid.UUID
    valid_from: datetime
    valid_until: datetime | None
    role: RoleSummary


class IncludedEntitlementLink(ReadModel):
    """An active role -> entitlement link."""

    link_id: uuid.UUID
    valid_from: datetime
    valid_until: datetime | None
    entitlement: EntitlementSummary


class RoleDetail(RoleRead):
    """A role with what it includes right now (links valid at the time of the request)."""

    included_roles: list[IncludedRoleLink]
    entitlements: list[IncludedEntitlementLink]


# --- composition -------------------------------------------------------------------------


class InclusionCreate(StrictIn):
    role_id: uuid.UUID = Field(description="The role to include")
    valid_from: AwareDatetime | None = Field(
        default=None, description="When the link takes effect (default now; never in the past)")


class RoleEntitlementCreate(StrictIn):
    entitlement_id: uuid.UUID
    valid_from: AwareDatetime | None = Field(
        default=None, description="When the link takes effect (default now; never in the past)")


class InclusionRead(ReadModel):
    id: uuid.UUID
    parent_role_id: uuid.UUID
    child_role_id: uuid.UUID
    valid_from: datetime
    valid_until: datetime | None
    end_reason: str | None


class RoleEntitlementRead(ReadModel):
    id: uuid.UUID
    role_id: uuid.UUID
    entitlement_id: uuid.UUID
    valid_from: datetime
    valid_until: datetime | None
    end_reason: str | None


# --- impact of a composition change ------------------------------------------------------


class RoleImpactIn(StrictIn):
    """A proposed change of one role's composition (nothing is saved)."""

    add_entitlements: list[uuid.UUID] = Field(default_factory=list, max_length=200,
                                              description="Entitlements the role would grant")
    end_entitlements: list[uuid.UUID] = Field(
        default_factory=list, max_length=200,
        description="Entitlements the role grants now and would stop granting")
    include_roles: list[uuid.UUID] = Field(default_factory=list, max_length=200,
                                           description="Roles the role would include")
    end_inclusions: list[uuid.UUID] = Field(
        default_factory=list, max_length=200,
        description="Roles the role includes now and would stop including")

    @model_validator(mode="after")
    def _something(self) -> RoleImpactIn:
        if not (self.add_entitlements or self.end_entitlements or self.include_roles
                or self.end_inclusions):
            raise ValueError("propose at least one change")
        return self


class ImpactEntitlement(ReadModel):
    id: uuid.UUID
    name: str
    application_id: uuid.UUID


class ImpactItem(ReadModel):
    entitlement: ImpactEntitlement


class ImpactChange(ReadModel):
    """What one holder would gain and lose."""

    identity_id: uuid.UUID
    display_name: str
    gains: list[ImpactItem]
    losses: list[ImpactItem]


class ImpactRule(ReadModel):
    id: uuid.UUID
    name: str
    severity: str


class ImpactViolation(ReadModel):
    """An SoD rule a holder does not break now and would break after the change."""

    identity_id: uuid.UUID
    display_name: str
    rule: ImpactRule
    explanation: str
    mitigated: bool = Field(description="An active exception of the holder covers it")


class RoleImpactOut(ReadModel):
    role: RoleSummary
    policy_version: str = Field(description="Version of the catalog the preview read")
    proposed_policy_version: str = Field(description="Version it would have after the change")
    holders: int = Field(description="Identities holding the role, directly or through a "
                                     "role that includes it")
    changes: list[ImpactChange]
    new_sod_violations: list[ImpactViolation]
    operations_expected: int = Field(description="Provisioning operations saving would record")


# --- SoD rules ------------------------------------------------------------------------------


class SodItemIn(StrictIn):
    """A role or an entitlement: exactly one of the two ids."""

    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SodItemIn:
        if (self.role_id is None) == (self.entitlement_id is None):
            raise ValueError("give exactly one of role_id and entitlement_id")
        return self


class SodRuleCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    severity: Severity = "high"
    exception_allowed: bool = True
    enabled: bool = True
    side_a: list[SodItemIn] = Field(min_length=1, max_length=200)
    side_b: list[SodItemIn] = Field(min_length=1, max_length=200)


class SodRuleUpdate(StrictIn):
    """Partial update; a side given replaces that side. ``enabled=false`` retires a rule."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    severity: Severity | None = None
    exception_allowed: bool | None = None
    enabled: bool | None = None
    side_a: list[SodItemIn] | None = Field(default=None, min_length=1, max_length=200)
    side_b: list[SodItemIn] | None = Field(default=None, min_length=1, max_length=200)


class SodItemRead(ReadModel):
    type: Literal["role", "entitlement"]
    id: uuid.UUID
    name: str


class SodRuleRead(ReadModel):
    id: uuid.UUID
    name: str
    description: str | None
    severity: str
    exception_allowed: bool
    enabled: bool
    side_a: list[SodItemRead]
    side_b: list[SodItemRead]
    created_at: datetime
    updated_at: datetime


SodRulePage = PageOut[SodRuleRead]


class SodRuleFilter(ListParams):
    severity: Severity | None = None
    enabled: bool | None = None
    q: str | None = Field(default=None, description="Substring of the name")


class SodExceptionCreate(StrictIn):
    identity_id: uuid.UUID = Field(description="Who may hold both sides")
    control: str = Field(min_length=1, max_length=2000,
                         description="The mitigating control that compensates the conflict")
    approver_id: uuid.UUID = Field(description="Who accepted the risk (not the identity)")
    expires_at: AwareDatetime = Field(description="When the exception ends (in the future)")


class SodExceptionRevoke(StrictIn):
    reason: str = Field(min_length=1, max_length=2000)


class SodExceptionRead(ReadModel):
    id: uuid.UUID
    rule_id: uuid.UUID
    identity_id: uuid.UUID
    control: str
    approver_id: uuid.UUID | None
    expires_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    created_at: datetime


SodExceptionPage = PageOut[SodExceptionRead]


class SodExceptionFilter(ListParams):
    identity_id: uuid.UUID | None = None
    active: bool | None = Field(default=None,
                                description="Only exceptions in force now (or only not)")
