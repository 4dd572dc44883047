"""/reports: the report catalogue, exports streamed and stored, their signed manifests
(capability ``reports:read``: administrators and auditors; every route is a GET).

An export streams to the client while the same bytes go to a stored file under
``var_dir/exports``; the manifest is written when the stream completes. The response names
the export (``X-Export-Id``) and links its manifest (``Link: <...>; rel="describedby"``).
A client that goes away mid-stream leaves a partial export without a manifest.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse

from idgov.audit.service import session_signer
from idgov.audit.signing import key_id_of, public_pem
from idgov.auth.caller import Caller
from idgov.config import Settings
from idgov.errors import Forbidden, NotFound
from idgov.reports import export, store
from idgov.reports.formats import FORMATS
from idgov.reports.registry import all_reports, get_report
from idgov.reports.schemas import (
    ExportFilter,
    ExportFormat,
    ExportPage,
    ExportRead,
    ReportPage,
    ReportRead,
)
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.schemas import problem_responses
from idgov.web.streaming import threaded_body

router = APIRouter(prefix="/reports", tags=["reports"])

Reader = Annotated[Caller, Depends(require("reports:read"))]
_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The export file", "content": {
        f.media_type.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
        for f in FORMATS.values()}}}


def exports_folder(settings: Settings) -> Path:
    """Where the web service stores the exports it streams."""
    return settings.var_dir / "exports"


def _may_read(caller: Caller, report: str) -> bool:
    try:
        return caller.can(get_report(report).capability)
    except NotFound:  # a report no longer registered: reports:read suffices
        return caller.can("reports:read")


def _export_read(item: store.StoredExport) -> ExportRead:
    manifest: dict[str, Any] = {}
    if item.state == "complete":
        with suppress(ValueError):  # an unreadable manifest: listed, without its figures
            manifest = store.read_manifest(item)
    base = f"/reports/exports/{item.id}"
    return ExportRead(
        id=item.id, report=item.report, format=item.format,
        state=item.state, file_name=item.file_name,
        size_bytes=item.size, generated_at=item.generated_at, rows=manifest.get("rows"),
        sha256=manifest.get("sha256"), file_url=base,
        manifest_url=f"{base}/manifest" if item.state == "complete" else None)


@router.get("", response_model=ReportPage, responses=problem_responses())
def list_reports(caller: Reader) -> ReportPage:
    """Every report the caller may export: columns, filters (JSON Schema) and formats."""
    items = [ReportRead(name=r.name, title=r.title, description=r.description,
                        columns=list(r.columns), parameters=r.params.model_json_schema(),
                        formats=sorted(FORMATS),
                        export_url=f"/reports/{r.name}/export")
             for r in all_reports() if caller.can(r.capability)]
    return ReportPage(items=items, next_cursor=None)


@router.get("/public-key", response_class=PlainTextResponse, responses={
    200: {"description": "PEM public key (SubjectPublicKeyInfo) that verifies manifests",
          "content": {"application/x-pem-file": {}}}, **problem_responses()})
def public_key(caller: Reader, session: DbSession) -> PlainTextResponse:
    """The Ed25519 public key that verifies export manifests (and the audit trail); its key
    id is in ``X-Key-Id``. ``idgov reports verify FILE MANIFEST --public-key PEM`` uses it
    offline."""
    signer = session_signer(session)
    if signer is None:  # pragma: no cover - the composition root always installs one
        raise RuntimeError("no signing key")
    return PlainTextResponse(public_pem(signer.public_key), media_type="application/x-pem-file",
                             headers={"X-Key-Id": key_id_of(signer.public_key)})


@router.get("/exports", response_model=ExportPage, responses=problem_responses())
def list_exports(caller: Reader, ctx: Ctx,
                 filters: Annotated[ExportFilter, Query()]) -> ExportPage:
    """Stored exports, newest first: ``complete`` (final file and signed manifest) or
    ``partial`` (running, or interrupted for good)."""
    items, next_cursor = store.page_exports(
        exports_folder(ctx.settings), may_read=lambda name: _may_read(caller, name),
        report=filters.report, state=filters.state, limit=filters.limit or 50,
        cursor=filters.cursor)
    return ExportPage(items=[_export_read(i) for i in items], next_cursor=next_cursor)


def _stored(caller: Caller, ctx: Ctx, export_id: uuid.UUID) -> store.StoredExport:
    found = store.find_export(exports_folder(ctx.settings), export_id)
    if not _may_read(caller, found.report):
        raise Forbidden(f"reading exports of report {found.report} needs "
                        f"{get_report(found.report).capability}")
    return found


@router.get("/exports/{export_id}", response_class=FileResponse,
            responses={**_FILE_RESPONSES, **problem_responses(404)})
def download_export(caller: Reader, ctx: Ctx, export_id: uuid.UUID) -> FileResponse:
    """The export file; ``X-Export-State`` says ``complete`` or ``partial`` (a partial file
    is never complete: its name ends in ``.partial``)."""
    found = _stored(caller, ctx, export_id)
    headers = {"X-Export-Id": str(found.id), "X-Export-State": found.state}
    if found.state == "complete":
        headers["Link"] = f'</reports/exports/{found.id}/manifest>; rel="describedby"'
    return FileResponse(found.path, media_type=FORMATS[found.format].media_type,
                        filename=found.file_name, headers=headers)


@router.get("/exports/{export_id}/manifest", response_class=FileResponse, responses={
    200: {"description": "The signed manifest", "content": {"application/json": {}}},
    **problem_responses(404)})
def download_manifest(caller: Reader, ctx: Ctx, export_id: uuid.UUID) -> FileResponse:
    """The signed manifest of a complete export, byte for byte as stored; 404 while
    partial."""
    found = _stored(caller, ctx, export_id)
    if found.state != "complete":
        raise NotFound(f"export {export_id} is partial: it has no manifest")
    return FileResponse(found.manifest_path, media_type="application/json",
                        filename=found.manifest_path.name)




@router.get("/{name}/export", response_class=StreamingResponse,
            responses={**_FILE_RESPONSES, **problem_responses(404)})
def export_report(name: str, request: Request, caller: Reader, ctx: Ctx, clock: ClockDep,
                  format: Annotated[ExportFormat, Query(
                      description="csv, jsonl or xlsx; every other query parameter is a "
                      "filter of the report (GET /reports lists them)")] = "csv",
                  ) -> StreamingResponse:
    """Export a report: the file streams to the client as it is written to the stored
    export; the manifest is signed and stored when the stream completes (then at
    ``Link``). Unknown reports are 404; unknown filters and malformed values 422, before
    anything runs. XLSX is assembled first, then sent."""
    report = get_report(name)
    if not caller.can(report.capability):
        raise Forbidden(f"exporting {name} needs {report.capability}")
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "format"]
    plan = export.plan_export(report=name, params=params, format=format,
                              folder=exports_folder(ctx.settings), clock=clock)
    stream = export.open_export_stream(ctx.session_factory, plan=plan, clock=clock)
    manifest_url = f"/reports/exports/{plan.export_id}/manifest"
    return StreamingResponse(threaded_body(stream), media_type=plan.format.media_type,
                             headers={
                                 "X-Export-Id": str(plan.export_id),
                                 "Link": f'<{manifest_url}>; rel="describedby"; '
                                         'type="application/json"',
                                 "Content-Disposition":
                                     f'attachment; filename="{plan.file_name}"'})
