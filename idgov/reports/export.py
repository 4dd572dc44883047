"""Running a report into a file with its signed manifest (the export service).

1. :func:`plan_export` validates before anything runs: the report exists (NotFound), the
   format is known, and the parameters fit the report's pydantic model (unknown filters,
   a value given twice for a single-valued filter and malformed values are an InvalidInput
   with one field error each).
2. :func:`stream_export` writes the file as ``<name>.partial`` (see :mod:`.store`) and yields
   every chunk it writes, so that the HTTP endpoint sends the very bytes that are stored. When
   the last chunk is on disk (fsync), the file takes its final name and the signed manifest
   is written beside it. If the stream stops before that (an exception, disk full, the
   consumer closing the generator because the client went away), the file keeps its
   ``.partial`` name and no manifest is ever written: a partial file never looks complete.
3. :func:`run_export` consumes the stream (the CLI and scheduled exports).

Where the rows come from: a CSV of a ``select`` report is written by the database (COPY on
PostgreSQL; on SQLite, values turned to text by SQLite and quoted from the driver's rows:
:mod:`.dbcsv`) when every column type allows it; anything else streams rows from a
server-side cursor (``yield_per``) or the report's ``rows`` callable through
:mod:`.formats`. On PostgreSQL the transaction's time zone is UTC while the export runs.
Reading only: the session is not flushed or committed here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import types
import typing
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.service import session_signer
from idgov.audit.signing import Signer
from idgov.clock import Clock
from idgov.errors import ErrorList, FieldError, InvalidInput
from idgov.reports import dbcsv
from idgov.reports.formats import (
    EXCEL_MAX_ROWS,
    FORMATS,
    Format,
    csv_chunks,
    jsonl_chunks,
    write_xlsx,
)
from idgov.reports.manifest import manifest_path_for, sign_manifest, write_manifest
from idgov.reports.registry import ReportDef, ReportQuery, get_report
from idgov.reports.store import PARTIAL_SUFFIX, export_file_name

log = logging.getLogger(__name__)

YIELD_PER = 2_000
READ_BLOCK = 256 * 1024
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportPlan:
    """A validated export, not yet run."""

    export_id: uuid.UUID
    report: ReportDef
    params: BaseModel
    format: Format
    generated_at: datetime
    folder: Path

    @property
    def file_name(self) -> str:
        return export_file_name(self.report.name, self.generated_at, self.export_id,
                                self.format.extension)

    @property
    def final_path(self) -> Path:
        return self.folder / self.file_name

    @property
    def partial_path(self) -> Path:
        return self.folder / (self.file_name + PARTIAL_SUFFIX)

    @property
    def manifest_path(self) -> Path:
        return manifest_path_for(self.final_path)


@dataclass
class ExportResult:
    """A finished export: where it is and what its manifest says."""

    export_id: uuid.UUID
    path: Path
    manifest_path: Path
    rows: int
    sha256: str
    size: int
    writer: str  # "copy" (PostgreSQL), "sql" (SQLite, text from SQL), "python"
    manifest: dict[str, Any] = field(default_factory=dict)


# --- parameters ------------------------------------------------------------------------------


def _multi_valued(annotation: Any) -> bool:
    """True for list-like filter types (``list[str]``, ``list[str] | None``...)."""
    origin = typing.get_origin(annotation)
    if origin in (list, set, tuple, frozenset, Sequence):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_multi_valued(arg) for arg in typing.get_args(annotation)
                   if arg is not type(None))
    return False


def parse_params(report: ReportDef,
                 raw: Mapping[str, Any] | Iterable[tuple[str, str]]) -> BaseModel:
    """The report's parameters from text pairs (query string, ``--param k=v``) or a mapping.

    A filter whose type is a list may be given several times; any other only once. Unknown
    filters and values the model refuses are InvalidInput with field errors."""
    grouped: dict[str, list[Any]] = {}
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    for key, value in pairs:
        values = value if isinstance(value, list) else [value]
        grouped.setdefault(key, []).extend(values)
    fields = report.params.model_fields
    by_key = {name: name for name in fields}
    by_key.update({info.alias: name for name, info in fields.items() if info.alias})
    errors = ErrorList()
    data: dict[str, Any] = {}
    for key, values in grouped.items():
        name = by_key.get(key)
        if name is None:
            known = ", ".join(sorted(fields)) or "none"
            errors.add(key, f"unknown filter for report {report.name} (it takes: {known})")
        elif _multi_valued(fields[name].annotation):
            data[key] = values
        elif len(values) > 1:
            errors.add(key, "given more than once; this filter takes one value")
        else:
            data[key] = values[0]
    try:
        checked = report.params.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            errors.add(".".join(str(p) for p in err["loc"]) or "parameters", err["msg"])
    errors.raise_if_any(f"invalid parameters for report {report.name}")
    return checked


def plan_export(*, report: str, params: Mapping[str, Any] | Iterable[tuple[str, str]],
                format: str, folder: Path, clock: Clock,
                export_id: uuid.UUID | None = None) -> ExportPlan:
    """Validate an export (report, format, parameters) without running it."""
    found = get_report(report)
    chosen = FORMATS.get(format)
    if chosen is None:
        raise InvalidInput("unknown export format", errors=[FieldError(
            "format", f"{format!r} is not one of {', '.join(sorted(FORMATS))}")])
    return ExportPlan(export_id=export_id or uuid.uuid4(), report=found,
                      params=parse_params(found, params), format=chosen,
                      generated_at=clock.now(), folder=folder)


# --- running ---------------------------------------------------------------------------------


class _Count:
    def __init__(self, progress: Progress | None) -> None:
        self.rows = 0
        self.progress = progress

    def __call__(self, rows: int) -> None:
        self.rows += rows
        if self.progress is not None:
            self.progress(self.rows)


def _rows(session: Session, query: ReportQuery) -> Iterator[Sequence[Any]]:
    if query.rows is not None:
        yield from query.rows()
        return
    assert query.select is not None
    result = session.execute(query.select, execution_options={"yield_per": YIELD_PER})
    yield from result


def _chunks(session: Session, plan: ExportPlan, query: ReportQuery, count: _Count,
            writer: list[str], copied: list[int], database_csv: bool) -> Iterator[bytes]:
    """The bytes of a streaming format, from the database or from Python."""
    dialect = session.get_bind().dialect.name
    if database_csv and plan.format.name == "csv" and query.select is not None and \
            dbcsv.database_csv_supported(query.select, dialect):
        if dialect == "postgresql":
            writer.append("copy")
            return dbcsv.pg_copy_chunks(session, query.select, query.columns, count, copied)
        writer.append("sql")
        return dbcsv.sqlite_csv_chunks(session, query.select, query.columns, count)
    writer.append("python")
    rows = _rows(session, query)
    if plan.format.name == "csv":
        return csv_chunks(query.columns, rows, count)
    return jsonl_chunks(query.columns, rows, count)


def _build(session: Session, plan: ExportPlan, clock: Clock) -> ReportQuery:
    query = plan.report.build(session, plan.params, clock)
    if query.select is not None and len(query.select.selected_columns) != len(query.columns):
        raise ValueError(f"report {plan.report.name}: the select has "
                         f"{len(query.select.selected_columns)} columns, the report "
                         f"{len(query.columns)}")
    return query


def stream_export(session: Session, *, plan: ExportPlan, signer: Signer, clock: Clock,
                  progress: Progress | None = None, max_sheet_rows: int = EXCEL_MAX_ROWS,
                  database_csv: bool = True,
                  result: list[ExportResult] | None = None) -> Generator[bytes, None, None]:
    """Start the export: the report's query is built now (its own errors, such as a point in
    time before the service existed, are raised here, before any byte), then the returned
    iterator writes the file and yields each chunk it writes (see the module doc). When the
    iterator is exhausted the file is complete and signed, and ``result`` (when given) holds
    the :class:`ExportResult`. ``database_csv=False`` makes even a CSV go through Python."""
    restore = dbcsv.pg_utc_session(session) if \
        session.get_bind().dialect.name == "postgresql" else None
    try:
        query = _build(session, plan, clock)
    except BaseException:
        if restore is not None:
            restore()
        raise
    return _write(session, plan=plan, query=query, signer=signer, progress=progress,
                  max_sheet_rows=max_sheet_rows, database_csv=database_csv, result=result,
                  restore=restore)


def _write(session: Session, *, plan: ExportPlan, query: ReportQuery, signer: Signer,
           progress: Progress | None, max_sheet_rows: int, database_csv: bool,
           result: list[ExportResult] | None,
           restore: Callable[[], None] | None) -> Generator[bytes, None, None]:
    plan.folder.mkdir(parents=True, exist_ok=True)
    partial = plan.partial_path
    digest = hashlib.sha256()
    size = 0
    count = _Count(progress)
    writer: list[str] = []
    copied: list[int] = []
    complete = False
    fh = partial.open("xb")
    try:
        if plan.format.name == "xlsx":
            fh.close()
            writer.append("python")
            count.rows = write_xlsx(partial, query.columns, _rows(session, query),
                                    sheet_name=plan.report.name, max_rows=max_sheet_rows,
                                    counter=count)
            with partial.open("rb") as reader:
                while block := reader.read(READ_BLOCK):
                    digest.update(block)
                    size += len(block)
                    yield block
        else:
            for chunk in _chunks(session, plan, query, count, writer, copied, database_csv):
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                yield chunk
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        rows = copied[0] if copied else count.rows
        partial.replace(plan.final_path)
        manifest = sign_manifest({
            "export_id": str(plan.export_id), "report": plan.report.name,
            "parameters": plan.params.model_dump(mode="json"),
            "generated_at": plan.generated_at.isoformat(), "format": plan.format.name,
            "file": plan.file_name, "bytes": size, "rows": rows,
            "sha256": digest.hexdigest(), "columns": list(query.columns)}, signer)
        write_manifest(plan.manifest_path, manifest)
        complete = True
        if result is not None:
            result.append(ExportResult(
                export_id=plan.export_id, path=plan.final_path,
                manifest_path=plan.manifest_path, rows=rows, sha256=manifest["sha256"],
                size=size, writer=writer[0] if writer else "python", manifest=manifest))
    finally:
        if not fh.closed:
            fh.close()
        if restore is not None:
            restore()
        if not complete:
            log.warning("export %s of report %s interrupted: %s stays partial, no manifest",
                        plan.export_id, plan.report.name, partial.name)


def run_export(session: Session, *, plan: ExportPlan, signer: Signer, clock: Clock,
               progress: Progress | None = None, max_sheet_rows: int = EXCEL_MAX_ROWS,
               database_csv: bool = True) -> ExportResult:
    """Run the export to its file and manifest (nothing streamed elsewhere)."""
    result: list[ExportResult] = []
    for _chunk in stream_export(session, plan=plan, signer=signer, clock=clock,
                                progress=progress, max_sheet_rows=max_sheet_rows,
                                database_csv=database_csv, result=result):
        pass
    return result[0]


def open_export_stream(factory: sessionmaker[Session], *, plan: ExportPlan,
                       clock: Clock) -> Generator[bytes, None, None]:
    """:func:`stream_export` in a session of its own (signed by the factory's audit signer),
    for a response that outlives the request's unit of work. Errors of the report's query
    are raised here; the session is closed (rolled back: nothing was written) when the
    returned iterator ends or is closed."""
    session = factory()
    try:
        signer = session_signer(session)
        if signer is None:
            raise RuntimeError("the session factory has no audit signer to sign manifests")
        stream = stream_export(session, plan=plan, signer=signer, clock=clock)
    except BaseException:
        session.close()
        raise
    return _owning(session, stream)


def _owning(session: Session, stream: Generator[bytes, None, None]
            ) -> Generator[bytes, None, None]:
    try:
        yield from stream
    finally:
        session.rollback()
        session.close()
