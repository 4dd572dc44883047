"""The export formats: CSV, JSON Lines and XLSX, each written as a stream (pure, no I/O here
except XLSX's own temporary files).

- **CSV**: RFC 4180: a header row, fields separated by commas, records ended by CRLF; a field
  is quoted (``"``, inner quotes doubled) when it holds a comma, a quote, CR or LF, or is the
  empty string. NULL is an empty unquoted field, so NULL and ``""`` stay distinct (as
  PostgreSQL's ``COPY ... CSV`` writes them: the database path and this one are byte-identical,
  see :mod:`idgov.reports.dbcsv`). UTF-8 without a byte-order mark. Timestamps are UTC ISO 8601
  with the offset (``2026-03-01T09:00:00+00:00``, microseconds only when there are some, as
  ``datetime.isoformat`` writes them), booleans ``true``/``false``, UUIDs in the hyphenated
  lower-case form.
- **JSON Lines**: one JSON object per row, the column names as keys in column order; numbers
  and booleans stay JSON numbers and booleans, NULL is ``null``, timestamps are text as in CSV.
- **XLSX**: XlsxWriter in ``constant_memory`` mode (one row in memory at a time); past
  1,048,576 rows (Excel's limit, the header included) the rows continue on a new sheet whose
  first row repeats the header. Timestamps are date cells in UTC shown as ISO 8601, booleans
  are boolean cells, text is always written as text (never read as a formula).

Writers are generators of ``bytes`` chunks (CSV, JSON Lines) so that one loop can write a file
and feed an HTTP response with the same bytes; XLSX needs its whole zip at the end, so it
writes a file.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter

EXCEL_MAX_ROWS = 1_048_576  # rows per worksheet, the header row included
CHUNK_ROWS = 2_000  # rows per bytes chunk of the streaming writers
XLSX_SHEET_NAME_MAX = 31


@dataclass(frozen=True)
class Format:
    """One export format: its name, file extension and media type."""

    name: str
    extension: str
    media_type: str
    streams: bool  # True when bytes can go to a client before the export ends


FORMATS: dict[str, Format] = {
    "csv": Format("csv", "csv", "text/csv; charset=utf-8", True),
    "jsonl": Format("jsonl", "jsonl", "application/jsonl", True),
    "xlsx": Format(
        "xlsx", "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
}

# --- values as text ------------------------------------------------------------------------


def timestamp_text(value: datetime) -> str:
    """A timestamp as UTC ISO 8601 with the offset; naive values are UTC by convention."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def value_text(value: Any) -> str | None:
    """The text of one value as CSV writes it (None for NULL)."""
    if value is None:
        return None
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is Decimal or kind is uuid.UUID:
        return str(value)
    if kind is datetime:
        return timestamp_text(value)
    if kind is date:
        return str(value.isoformat())
    if isinstance(value, enum.Enum):
        return value_text(value.value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(json_value(value), ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_NEEDS_QUOTES = re.compile(r'[",\r\n]').search


def csv_field(text: str | None, *, single_column: bool = False) -> str:
    """One CSV field, quoted when it must be (RFC 4180; the empty string is quoted so that it
    differs from NULL; ``\\.`` alone on a line is quoted too, as PostgreSQL does)."""
    if text is None:
        return ""
    if text == "" or _NEEDS_QUOTES(text) is not None or (single_column and text == "\\."):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(values: Sequence[Any], *, single_column: bool = False) -> str:
    """One CSV record (without its line end)."""
    return ",".join(csv_field(value_text(v), single_column=single_column) for v in values)


def csv_header(columns: Sequence[str]) -> bytes:
    """The header row, CRLF-terminated."""
    return (",".join(csv_field(c, single_column=len(columns) == 1) for c in columns)
            + "\r\n").encode("utf-8")


def csv_chunks(columns: Sequence[str], rows: Iterable[Sequence[Any]],
               counter: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The header, then the rows, as CSV bytes in chunks of :data:`CHUNK_ROWS` rows.
    ``counter`` is told how many rows each chunk held."""
    yield csv_header(columns)
    single = len(columns) == 1
    lines: list[str] = []
    for row in rows:
        lines.append(csv_line(row, single_column=single))
        if len(lines) >= CHUNK_ROWS:
            lines.append("")
            yield "\r\n".join(lines).encode("utf-8")
            if counter is not None:
                counter(len(lines) - 1)
            lines = []
    if lines:
        lines.append("")
        yield "\r\n".join(lines).encode("utf-8")
        if counter is not None:
            counter(len(lines) - 1)


# --- JSON Lines ------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A value as JSON data: numbers and booleans kept, timestamps as text, NULL as None."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    return str(value)


def jsonl_chunks(columns: Sequence[str], rows: Iterable[Sequence[Any]],
                 counter: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """One JSON object per row (keys in column order), in chunks of :data:`CHUNK_ROWS` rows."""
    names = tuple(columns)
    lines: list[str] = []
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for row in rows:
        lines.append(dumps({k: json_value(v) for k, v in zip(names, row, strict=True)}))
        if len(lines) >= CHUNK_ROWS:
            lines.append("")
            yield "\n".join(lines).encode("utf-8")
            if counter is not None:
                counter(len(lines) - 1)
            lines = []
    if lines:
        lines.append("")
        yield "\n".join(lines).encode("utf-8")
        if counter is not None:
            counter(len(lines) - 1)


# --- XLSX ------------------------------------------------------------------------------------


def _sheet_names(base: str) -> Iterator[str]:
    """``base``, ``base 2``, ``base 3``... within Excel's 31 characters and allowed set."""
    clean = re.sub(r"[\[\]:*?/\\']", "_", base).strip() or "report"
    yield clean[:XLSX_SHEET_NAME_MAX]
    number = 2
    while True:
        suffix = f" {number}"
        yield clean[:XLSX_SHEET_NAME_MAX - len(suffix)] + suffix
        number += 1


def write_xlsx(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
               sheet_name: str = "report", max_rows: int = EXCEL_MAX_ROWS,
               counter: Callable[[int], None] | None = None) -> int:
    """Write ``rows`` to an XLSX workbook at ``path`` (constant memory); returns the row
    count. A sheet holds at most ``max_rows`` rows including its header; the rows go on in a
    new sheet with the header repeated."""
    if max_rows < 2:
        raise ValueError("a sheet needs room for the header and one row")
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False, "default_date_format": 'yyyy-mm-dd"T"hh:mm:ss"Z"',
        "remove_timezone": True})
    bold = workbook.add_format({"bold": True})
    names = _sheet_names(sheet_name)
    count = 0
    sheet = None
    row_index = max_rows  # forces the first sheet
    pending = 0
    try:
        for row in rows:
            if row_index >= max_rows:
                sheet = workbook.add_worksheet(next(names))
                for col, name in enumerate(columns):
                    sheet.write_string(0, col, name, bold)
                sheet.freeze_panes(1, 0)
                row_index = 1
            assert sheet is not None
            for col, value in enumerate(row):
                _write_cell(sheet, row_index, col, value)
            row_index += 1
            count += 1
            pending += 1
            if counter is not None and pending >= CHUNK_ROWS:
                counter(pending)
                pending = 0
        if sheet is None:  # no rows: a sheet with the header alone
            sheet = workbook.add_worksheet(next(names))
            for col, name in enumerate(columns):
                sheet.write_string(0, col, name, bold)
    finally:
        workbook.close()
    if counter is not None and pending:
        counter(pending)
    return count


def _write_cell(sheet: Any, row: int, col: int, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, int | float | Decimal):
        sheet.write_number(row, col, float(value))
    elif isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value
        sheet.write_datetime(row, col, utc.replace(tzinfo=None))
    elif isinstance(value, date):
        sheet.write_string(row, col, value.isoformat())
    else:
        text = value_text(value)
        sheet.write_string(row, col, text if text is not None else "")
