"""HR source schemas: how a feed is read (kind, column mapping) and how cautiously it is
applied (mode, thresholds, all-or-nothing), with the lifecycle timings it asks for."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

SourceKind = Literal["csv", "json", "scim"]
FeedMode = Literal["snapshot", "delta"]

_MAPPING = ("Canonical HR field (employee_id, given_name, ..., or attributes.<name>) -> the "
            "column header (CSV) or key (JSON) the HR system uses; empty: the canonical names")
_ZONES = "Location -> IANA time zone, for workers whose record names no zone"


class HrSourceCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200, description="Unique name")
    kind: SourceKind = Field(default="csv", description="How the source delivers: a CSV "
                             "file, a JSON push, or SCIM")
    description: str | None = Field(default=None, max_length=2000)
    column_mapping: dict[str, str] = Field(default_factory=dict, description=_MAPPING)
    default_mode: FeedMode = Field(default="snapshot", description="A snapshot lists everyone "
                                   "employed (whoever is missing has left); a delta only "
                                   "changes")
    all_or_nothing: bool = Field(default=False, description="One bad row rejects the run")
    termination_threshold_percent: float = Field(
        default=5.0, ge=0, le=100, description="A snapshot terminating more than this share "
        "of the active population is held for an administrator")
    change_threshold: int | None = Field(
        default=None, ge=1, description="A snapshot changing more identities than this is "
        "held; null: no limit")
    mover_grace_days: int = Field(default=7, ge=0, le=3650, description="Days a mover keeps "
                                  "birthright access their new position no longer gives")
    account_retention_days: int = Field(default=30, ge=0, le=3650, description="Days a "
                                        "leaver's disabled accounts are kept before deletion")
    default_time_zone: str = Field(default="UTC", min_length=1, max_length=64,
                                   description="IANA zone of workers with no zone or location")
    location_time_zones: dict[str, str] = Field(default_factory=dict, description=_ZONES)
    enabled: bool = True


class HrSourceUpdate(StrictIn):
    """Partial update: only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: SourceKind | None = None
    description: str | None = Field(default=None, max_length=2000)
    column_mapping: dict[str, str] | None = Field(default=None, description=_MAPPING)
    default_mode: FeedMode | None = None
    all_or_nothing: bool | None = None
    termination_threshold_percent: float | None = Field(default=None, ge=0, le=100)
    change_threshold: int | None = Field(default=None, ge=1)
    mover_grace_days: int | None = Field(default=None, ge=0, le=3650)
    account_retention_days: int | None = Field(default=None, ge=0, le=3650)
    default_time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    location_time_zones: dict[str, str] | None = Field(default=None, description=_ZONES)
    enabled: bool | None = None


class HrSourceRead(ReadModel):
    id: uuid.UUID
    name: str
    kind: str
    description: str | None
    column_mapping: dict[str, Any]
    default_mode: str
    all_or_nothing: bool
    termination_threshold_percent: float
    change_threshold: int | None
    mover_grace_days: int
    account_retention_days: int
    default_time_zone: str
    location_time_zones: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime


HrSourcePage = PageOut[HrSourceRead]


class HrSourceFilter(ListParams):
    kind: SourceKind | None = None
    enabled: bool | None = None
