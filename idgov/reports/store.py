"""Stored exports: files in a folder, named so that the name tells what and whether complete.

``<report>-<YYYYmmddTHHMMSSZ>-<export id, 32 hex>.<csv|jsonl|xlsx>``, written as
``<that name>.partial`` while the export runs and renamed when the last byte is on disk; the
signed manifest ``<that name>.manifest.json`` is written after the rename. So:

- **complete**: the final name and its manifest;
- **partial**: a ``.partial`` file (an export running, or one that was interrupted: client
  gone, disk full, an error; it keeps that name for good), or a final name whose manifest
  is missing (the process died between the rename and the manifest).

The folder is the whole state (no table): the web service keeps its exports under
``var_dir/exports``; scheduled exports drop into the folders their schedules name.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idgov.errors import FieldError, InvalidInput, NotFound
from idgov.reports.manifest import MANIFEST_SUFFIX, load_manifest

PARTIAL_SUFFIX = ".partial"
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(
    r"^(?P<report>[A-Za-z0-9_.-]+?)-(?P<stamp>\d{8}T\d{6}Z)-(?P<id>[0-9a-f]{32})"
    r"\.(?P<ext>csv|jsonl|xlsx)(?P<partial>\.partial)?$")


def safe_report_name(name: str) -> str:
    """The report name as it may appear in a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "report"


def export_file_name(report: str, generated_at: datetime, export_id: uuid.UUID,
                     extension: str) -> str:
    """The final name of an export file."""
    stamp = generated_at.astimezone(UTC).strftime(_STAMP)
    return f"{safe_report_name(report)}-{stamp}-{export_id.hex}.{extension}"


@dataclass(frozen=True)
class StoredExport:
    """One export file found in a folder."""

    id: uuid.UUID
    report: str
    format: str
    generated_at: datetime
    state: str  # "complete" or "partial"
    path: Path
    size: int

    @property
    def manifest_path(self) -> Path:
        return self.path.with_name(self.path.name + MANIFEST_SUFFIX)

    @property
    def file_name(self) -> str:
        return self.path.name


def _parse(path: Path) -> StoredExport | None:
    found = _NAME.match(path.name)
    if found is None:
        return None
    try:
        size = path.stat().st_size
    except OSError:  # renamed or removed meanwhile
        return None
    partial = found["partial"] is not None
    state = "partial"
    if not partial and path.with_name(path.name + MANIFEST_SUFFIX).is_file():
        state = "complete"
    return StoredExport(
        id=uuid.UUID(hex=found["id"]), report=found["report"], format=found["ext"],
        generated_at=datetime.strptime(found["stamp"], _STAMP).replace(tzinfo=UTC),
        state=state, path=path, size=size)


def list_exports(folder: Path) -> list[StoredExport]:
    """Every export file in ``folder``, newest first (then by id)."""
    if not folder.is_dir():
        return []
    found = [e for e in (_parse(p) for p in folder.iterdir() if p.is_file()) if e is not None]
    found.sort(key=lambda e: (e.generated_at, e.id.hex), reverse=True)
    return found


def find_export(folder: Path, export_id: uuid.UUID) -> StoredExport:
    """The export with this id in ``folder`` (complete or partial); NotFound otherwise."""
    if folder.is_dir():
        for path in folder.glob(f"*-{export_id.hex}.*"):
            found = _parse(path)
            if found is not None and found.id == export_id:
                return found
    raise NotFound(f"there is no export {export_id}")


def _key(export: StoredExport) -> str:
    return f"{export.generated_at.strftime(_STAMP)}-{export.id.hex}"


def page_exports(folder: Path, *, may_read: Callable[[str], bool], report: str | None = None,
                 state: str | None = None, limit: int = 50,
                 cursor: str | None = None) -> tuple[list[StoredExport], str | None]:
    """A page of the exports in ``folder`` the caller may read (``may_read(report name)``),
    newest first; the cursor is the last item's position."""
    if cursor is not None and not re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{32}", cursor):
        raise InvalidInput("invalid cursor", errors=[FieldError("cursor", "not a cursor "
                                                                "from this list")])
    items = [e for e in list_exports(folder)
             if (report is None or e.report == report) and (state is None or e.state == state)
             and (cursor is None or _key(e) < cursor) and may_read(e.report)]
    page = items[:limit]
    return page, (_key(page[-1]) if len(items) > limit else None)


def read_manifest(export: StoredExport) -> dict[str, Any]:
    """The manifest of a complete export; NotFound while the export is partial."""
    if export.state != "complete":
        raise NotFound(f"export {export.id} is partial: it has no manifest")
    return load_manifest(export.manifest_path)
