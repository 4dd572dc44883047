"""API schemas of /reports: the report catalogue and the stored exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from idgov.web.schemas import ListParams, PageOut

ExportFormat = Literal["csv", "jsonl", "xlsx"]
ExportState = Literal["complete", "partial"]


class ReportRead(BaseModel):
    """A report that can be exported, with its columns and the JSON Schema of its filters."""

    name: str
    title: str
    description: str
    columns: list[str]
    parameters: dict[str, Any] = Field(
        description="JSON Schema of the filters, given as query parameters of the export "
        "(a list-valued filter may be repeated)")
    formats: list[ExportFormat]
    export_url: str = Field(description="GET it with ?format=&<filters> to export")


class ReportPage(PageOut[ReportRead]):
    """Every report the caller may export (one page: the catalogue is small)."""


class ExportRead(BaseModel):
    """A stored export file: complete (final name and signed manifest) or partial."""

    id: uuid.UUID
    report: str
    format: ExportFormat
    state: ExportState
    file_name: str
    size_bytes: int
    generated_at: datetime
    rows: int | None = Field(default=None, description="From the manifest (complete only)")
    sha256: str | None = Field(default=None, description="From the manifest (complete only)")
    file_url: str
    manifest_url: str | None = Field(default=None, description="Complete exports only")


class ExportPage(PageOut[ExportRead]):
    """A page of stored exports, newest first."""


class ExportFilter(ListParams):
    """Filters of the stored exports' list."""

    report: str | None = None
    state: ExportState | None = None
