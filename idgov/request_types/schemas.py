"""Request type schemas: a kind of request, its form (a JSON Schema) and its policy."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

Risk = Literal["low", "medium", "high", "critical"]
Classification = Literal["none", "pii", "regulated"]

KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


def _none_only() -> list[Classification]:
    return ["none"]


class StageIn(StrictIn):
    """One approval stage: the beneficiary's manager, the item's owner, or a group."""

    approver: Literal["manager", "owner", "group"]
    group_id: uuid.UUID | None = Field(default=None, description="For approver=group")
    mode: Literal["any", "all"] = Field(default="any",
                                        description="any: one approval completes the stage; "
                                                    "all: every approver must approve")

    @model_validator(mode="after")
    def _group_needs_id(self) -> StageIn:
        if self.approver == "group" and self.group_id is None:
            raise ValueError("a group stage names its group_id")
        if self.approver != "group" and self.group_id is not None:
            raise ValueError("only a group stage has a group_id")
        return self


class RequestTypeCreate(StrictIn):
    key: str = Field(pattern=KEY_PATTERN, description="Stable name used by clients, "
                                                      "e.g. 'application-access'")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    form_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="A JSON Schema (Draft 2020-12) of the form data; served to clients and "
                    "checked on submission")
    approval_stages: list[StageIn] = Field(
        default_factory=lambda: [StageIn(approver="manager"), StageIn(approver="owner")],
        description="The approval chain, in order, for lines that are not auto-approved")
    auto_approve_max_risk: Risk | None = Field(
        default=None, description="Lines up to this risk (not privileged, no SoD violation) "
                                  "need no approval; null: every line needs approval")
    dual_control_group_id: uuid.UUID | None = None
    automatic_max_risk: Risk | None = Field(
        default="high", description="Items up to this risk are fulfilled by connectors")
    automatic_classifications: list[Classification] = Field(
        default_factory=_none_only,
        description="Data classifications connectors may fulfil; others by a person")
    duration_required: bool = False
    max_duration_days: int | None = Field(default=None, ge=1, le=3650)
    approval_sla_hours: int = Field(default=72, ge=1, le=24 * 90)
    active: bool = True
    on_partial_failure: Literal["keep", "rollback"] = Field(
        default="keep", description="When some lines fail: keep the lines done (partially "
                                    "fulfilled) or roll them back with compensating operations")


class RequestTypeUpdate(StrictIn):
    """Partial update; ``key`` cannot change (clients name types by it)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    form_schema: dict[str, Any] | None = None
    approval_stages: list[StageIn] | None = None
    auto_approve_max_risk: Risk | None = None
    dual_control_group_id: uuid.UUID | None = None
    automatic_max_risk: Risk | None = None
    automatic_classifications: list[Classification] | None = None
    duration_required: bool | None = None
    max_duration_days: int | None = Field(default=None, ge=1, le=3650)
    approval_sla_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    on_partial_failure: Literal["keep", "rollback"] | None = None
    active: bool | None = None


class RequestTypeRead(ReadModel):
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    form_schema: dict[str, Any]
    approval_stages: list[dict[str, Any]]
    auto_approve_max_risk: str | None
    dual_control_group_id: uuid.UUID | None
    automatic_max_risk: str | None
    automatic_classifications: list[str]
    duration_required: bool
    max_duration_days: int | None
    approval_sla_hours: int
    active: bool
    on_partial_failure: str
    created_at: datetime
    updated_at: datetime


RequestTypePage = PageOut[RequestTypeRead]


class RequestTypeFilter(ListParams):
    active: bool | None = None
