"""Identity schemas. Fields mirror the HR record; ``employee_id`` is the immutable HR key."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import EmailStr, Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

LifecycleState = Literal["prehire", "active", "suspended", "terminated"]
EmploymentType = Literal["employee", "contractor", "intern", "temporary", "vendor"]


class IdentityBase(StrictIn):
    given_name: str = Field(min_length=1, max_length=200)
    family_name: str = Field(min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=400)
    email: EmailStr | None = None
    user_name: str | None = Field(default=None, max_length=256,
                                  description="Sign-in name (SCIM userName), unique")
    manager_id: uuid.UUID | None = None
    department: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64,
                                  description="IANA time zone of the location")
    job_code: str | None = Field(default=None, max_length=64)
    job_title: str | None = Field(default=None, max_length=200)
    cost_center: str | None = Field(default=None, max_length=64)
    employment_type: EmploymentType = "employee"
    lifecycle_state: LifecycleState = "active"
    hire_date: date | None = None
    termination_date: date | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class IdentityCreate(IdentityBase):
    employee_id: str = Field(min_length=1, max_length=64, description="HR key, immutable")


class IdentityUpdate(StrictIn):
    """Partial update: only the fields given change. ``employee_id`` cannot change."""

    given_name: str | None = Field(default=None, min_length=1, max_length=200)
    family_name: str | None = Field(default=None, min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=400)
    email: EmailStr | None = None
    user_name: str | None = Field(default=None, max_length=256)
    manager_id: uuid.UUID | None = None
    department: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64)
    job_code: str | None = Field(default=None, max_length=64)
    job_title: str | None = Field(default=None, max_length=200)
    cost_center: str | None = Field(default=None, max_length=64)
    employment_type: EmploymentType | None = None
    lifecycle_state: LifecycleState | None = None
    hire_date: date | None = None
    termination_date: date | None = None
    attributes: dict[str, Any] | None = None


class IdentityRead(ReadModel):
    id: uuid.UUID
    employee_id: str
    given_name: str
    family_name: str
    display_name: str
    email: str | None
    user_name: str | None
    external_id: str | None
    hr_source_id: uuid.UUID | None
    manager_id: uuid.UUID | None
    department: str | None
    location: str | None
    time_zone: str | None
    job_code: str | None
    job_title: str | None
    cost_center: str | None
    employment_type: str
    lifecycle_state: str
    hire_date: date | None
    termination_date: date | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


IdentityPage = PageOut[IdentityRead]


class IdentityFilter(ListParams):
    department: str | None = None
    location: str | None = None
    lifecycle_state: LifecycleState | None = None
    manager_id: uuid.UUID | None = None
    employee_id: str | None = None
    email: str | None = None
    q: str | None = Field(default=None, description="Substring of the display name or email")
