"""Birthright rules: administration and preview, in and out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

_CONDITION = ("A condition over HR attributes: {\"all\"|\"any\": [...]}, {\"not\": c} or "
              "{\"attribute\", \"op\", \"value\"} (see idgov.policy.birthright); "
              "{\"all\": []} matches everyone")


class BirthrightRuleCreate(StrictIn):
    """A rule: who matches ``condition`` holds ``role_id`` or ``entitlement_id`` (exactly one)."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    condition: dict[str, Any] = Field(description=_CONDITION)
    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    enabled: bool = True


class BirthrightRuleUpdate(StrictIn):
    """Partial update. Giving one of ``role_id``/``entitlement_id`` switches the target to
    it; ``enabled=false`` retires the rule (its assignments end after the grace period)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    condition: dict[str, Any] | None = Field(default=None, description=_CONDITION)
    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    enabled: bool | None = None


class BirthrightRuleFilter(ListParams):
    enabled: bool | None = None
    q: str | None = Field(default=None, description="Substring of the name")
    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None


class RuleApplication(BaseModel):
    """What applying a rule change did to the identities it affects."""

    identities: int = Field(description="Identities recomputed")
    granted: int
    ending: int = Field(description="Assignments given an end after the grace period")
    restored: int = Field(description="Ending assignments whose end was taken back")
    revoked: int = Field(description="Assignments not yet started, ended at once")
    skipped: int = Field(description="Grants left out: the access is held otherwise")


class BirthrightRuleRead(ReadModel):
    id: uuid.UUID
    name: str
    description: str | None
    condition: dict[str, Any]
    role_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    applied: RuleApplication | None = Field(
        default=None, description="On create and update: what applying the rule did")


BirthrightRulePage = PageOut[BirthrightRuleRead]


class RulePreviewIn(StrictIn):
    """Who a condition matches now; with ``rule_id``, how that differs from the rule as it
    stands (who would gain and who would lose its access). Read-only."""

    condition: dict[str, Any] = Field(description=_CONDITION)
    role_id: uuid.UUID | None = Field(default=None, description="Target to preview")
    entitlement_id: uuid.UUID | None = Field(default=None, description="Target to preview")
    rule_id: uuid.UUID | None = Field(
        default=None, description="An existing rule whose change is previewed")


class IdentityBrief(BaseModel):
    id: uuid.UUID
    employee_id: str
    display_name: str
    department: str | None
    lifecycle_state: str


class RulePreviewOut(BaseModel):
    matching_count: int = Field(description="Identities (not terminated) the condition matches")
    matching: list[IdentityBrief] = Field(description="The first 50, by employee id")
    gaining_count: int | None = Field(
        default=None, description="With rule_id: would receive the rule's (new) target")
    gaining: list[IdentityBrief] | None = None
    losing_count: int | None = Field(
        default=None, description="With rule_id: hold the rule's access now and would lose it")
    losing: list[IdentityBrief] | None = None
