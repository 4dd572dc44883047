"""The auditor's report pages (/ui/reports): every report the caller may export with its
filters, a run that stores the export and its signed manifest, the stored exports, and
their downloads (file and manifest).

Same services and capability as ``/reports`` (``reports:read``, administrators and
auditors; a report may ask for more): the export is planned by
:func:`idgov.reports.export.plan_export` (unknown filters and bad values are shown at their
fields, before anything runs) and run to the same folder the API stores its exports in.
Point-in-time queries are the ``entitlements_as_of`` report with its ``as_of`` field (a
date and time in UTC on the page).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import FileResponse
from starlette.responses import RedirectResponse, Response

from idgov.audit.service import session_signer
from idgov.auth.caller import Caller
from idgov.errors import Forbidden, InvalidInput, NotFound
from idgov.reports import export, store
from idgov.reports.endpoints import exports_folder
from idgov.reports.formats import FORMATS
from idgov.reports.registry import ReportDef, all_reports, get_report
from idgov.ui import lookup
from idgov.ui.deps import CheckedForm, page_require, page_router
from idgov.ui.lookup import WorkSession
from idgov.ui.registry import NavItem, register_nav
from idgov.ui.render import field_errors, render
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, Ctx

router = page_router(prefix="/ui/reports")
register_nav(NavItem(key="reports", label="Reports", href="/ui/reports",
                     capabilities=("reports:read",), order=500))

Reader = Annotated[Caller, Depends(page_require("reports:read"))]


def _fields(report: ReportDef) -> list[dict[str, Any]]:
    """The report's filters as form inputs: name, label, kind, whether required."""
    out = []
    for name, info in report.params.model_fields.items():
        hint = str(info.annotation)
        kind = "datetime-local" if "datetime" in hint.lower() else \
            "date" if "date" in hint.lower() else "text"
        out.append({"name": info.alias or name, "label": info.description or name,
                    "kind": kind, "required": info.is_required(),
                    "multi": export._multi_valued(info.annotation)})
    return out


def _visible(caller: Caller) -> list[ReportDef]:
    return [r for r in all_reports() if caller.can(r.capability)]


def _page(request: Request, caller: Caller, *, errors: dict[str, str] | None = None,
          values: dict[str, str] | None = None, status_code: int = 200) -> Response:
    reports = [{"def": r, "fields": _fields(r)} for r in _visible(caller)]
    return render(request, "audit/reports.html", status_code=status_code, title="Reports",
                  reports=reports, formats=sorted(FORMATS), errors=errors or {},
                  values=values or {})


@router.get("")
def reports(request: Request, caller: Reader) -> Response:
    """Every report the caller may export, with a form of its filters."""
    return _page(request, caller)


def _instant(value: str) -> str:
    """A datetime-local value (no offset) is read as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return value if parsed.tzinfo is not None else value + "+00:00"


def _params(report: ReportDef, form: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for field in _fields(report):
        raw = [str(v).strip() for v in form.getlist(f"{report.name}.{field['name']}")]
        if field["multi"]:
            raw = [p.strip() for v in raw for p in v.split(",")]
        for value in (v for v in raw if v):
            pairs.append((field["name"],
                          _instant(value) if field["kind"] == "datetime-local" else value))
    return pairs


@router.post("/{name}/export")
def run(request: Request, session: WorkSession, caller: Reader, ctx: Ctx, clock: ClockDep,
        name: str, form: CheckedForm) -> Response:
    """Run an export to the stored folder (file and signed manifest), then show it."""
    report = get_report(name)
    if not caller.can(report.capability):
        raise Forbidden(f"exporting {name} needs {report.capability}")
    values = {k: lookup.text(form, k) for k in form if k.startswith(f"{name}.")}
    try:
        plan = export.plan_export(report=name, params=_params(report, form),
                                  format=lookup.text(form, "format") or "csv",
                                  folder=exports_folder(ctx.settings), clock=clock)
        signer = session_signer(session)
        if signer is None:  # pragma: no cover - the composition root always installs one
            raise RuntimeError("no signing key")
        result = export.run_export(session, plan=plan, signer=signer, clock=clock)
    except InvalidInput as exc:
        session.rollback()
        errors = {f"{name}.{k}": v for k, v in field_errors(exc).items()}
        errors.setdefault(f"{name}.form", exc.detail)
        return _page(request, caller, errors=errors, values=values, status_code=422)
    flash(request, f"Exported {result.rows} rows of {report.title}.", "success")
    return RedirectResponse(f"/ui/reports/exports/{result.export_id}", status_code=303)


def _may_read(caller: Caller, report: str) -> bool:
    try:
        return caller.can(get_report(report).capability)
    except NotFound:
        return caller.can("reports:read")


def _stored(caller: Caller, ctx: Ctx, export_id: uuid.UUID) -> store.StoredExport:
    found = store.find_export(exports_folder(ctx.settings), export_id)
    if not _may_read(caller, found.report):
        raise Forbidden(f"reading exports of report {found.report} is not allowed")
    return found


@router.get("/exports")
def exports(request: Request, caller: Reader, ctx: Ctx) -> Response:
    """The stored exports, newest first."""
    items, _next = store.page_exports(exports_folder(ctx.settings),
                                      may_read=lambda r: _may_read(caller, r), limit=200)
    return render(request, "audit/exports.html", title="Stored exports", exports=items)


@router.get("/exports/{export_id}")
def export_page(request: Request, caller: Reader, ctx: Ctx, export_id: uuid.UUID) -> Response:
    """One export: its figures, its signed manifest, the downloads."""
    found = _stored(caller, ctx, export_id)
    manifest = store.read_manifest(found) if found.state == "complete" else None
    return render(request, "audit/export.html", title=f"Export {found.report}", item=found,
                  manifest=manifest,
                  manifest_text=json.dumps(manifest, indent=2) if manifest else "")


@router.get("/exports/{export_id}/file")
def download(caller: Reader, ctx: Ctx, export_id: uuid.UUID) -> FileResponse:
    """The export file."""
    found = _stored(caller, ctx, export_id)
    return FileResponse(found.path, media_type=FORMATS[found.format].media_type,
                        filename=found.file_name)


@router.get("/exports/{export_id}/manifest")
def manifest(caller: Reader, ctx: Ctx, export_id: uuid.UUID) -> FileResponse:
    """The signed manifest, byte for byte as stored (404 while partial)."""
    found = _stored(caller, ctx, export_id)
    if found.state != "complete":
        raise NotFound(f"export {export_id} is partial: it has no manifest")
    return FileResponse(found.manifest_path, media_type="application/json",
                        filename=found.manifest_path.name)
