"""Reading an HR CSV file into worker records, with a row-and-column report of bad rows.

The file is UTF-8 (a byte order mark is allowed), lines end in CRLF or LF, fields may be
quoted and hold commas and line breaks. The source's column mapping says which header names
which canonical field; an empty mapping means the headers are the canonical names. Rows are
numbered as records with the header as row 1 (a quoted line break does not start a row).
The bytes are decoded as they are read, so a large upload is never held twice, and hashed
on the way (SHA-256) so a run can name the exact file it read.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from idgov.errors import FieldError
from idgov.lifecycle.coercion import (
    ATTRIBUTE_PREFIX,
    MAPPABLE,
    FeedFormatError,
    check_mapping,
    coerce_values,
    duplicate_errors,
    is_mappable,
)
from idgov.lifecycle.records import REQUIRED, ParsedFeed, RowError, WorkerRecord

_CHUNK = 1 << 16
CsvInput = bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]


class _HashingReader(io.RawIOBase):
    """A raw binary stream over byte chunks that hashes every byte it hands out."""

    def __init__(self, chunks: Iterator[bytes], digest: Any) -> None:
        super().__init__()
        self._chunks = chunks
        self._digest = digest
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError("a CSV feed is read from bytes, not text")
            self._digest.update(chunk)
            self._pending = memoryview(chunk).cast("B")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _chunks(data: CsvInput) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        return iter([bytes(data)] if not isinstance(data, bytes) else [data])
    read = getattr(data, "read", None)
    if read is not None:
        return iter(lambda: read(_CHUNK), b"")
    if isinstance(data, str):
        raise TypeError("a CSV feed is read from bytes, not text")
    return iter(data)


def _getter(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The cells at ``indexes`` of a row, as a tuple (one C call per row)."""
    if len(indexes) == 1:
        index = indexes[0]
        return lambda cells: (cells[index],)
    return operator.itemgetter(*indexes)


def _header_plan(header: list[str], mapping: Mapping[str, str]
                 ) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """Which cell holds which field, and how the file names each field's column."""
    names = [h.strip() for h in header]
    errors: list[FieldError] = []
    position: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            continue
        if name in position:
            errors.append(FieldError(f"header.{name}", f"the header names column {name!r} "
                                     f"more than once (columns {position[name] + 1} and "
                                     f"{index + 1})"))
        else:
            position[name] = index
    wanted = dict(mapping) if mapping else {
        name: name for name in names if name in MAPPABLE
        or (name.startswith(ATTRIBUTE_PREFIX) and is_mappable(name))}
    for field in REQUIRED:
        if field not in wanted:
            where = f"mapping.{field}" if mapping else f"header.{field}"
            message = (f"the mapping names no column for the required field {field}" if mapping
                       else f"the header has no {field} column")
            errors.append(FieldError(where, message))
    for field, column in wanted.items():
        if column not in position:
            errors.append(FieldError(f"header.{column}", f"column {column!r} (mapped to "
                                     f"{field}) is not in the header"))
    if errors:
        raise FeedFormatError("the CSV header does not match the source's column mapping",
                              errors=errors)
    plan = [(field, position[column]) for field, column in wanted.items()]
    return plan, wanted


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while a feed is read: the records are hundreds of thousands
    of small containers that live on, and collecting again and again as they pile up doubles
    the time of a large file. Reference counting frees everything as usual meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read(data: CsvInput, mapping: Mapping[str, str], digest: Any) -> ParsedFeed:
    with _no_cyclic_gc():
        return _read_rows(data, mapping, digest)


def _read_rows(data: CsvInput, mapping: Mapping[str, str], digest: Any) -> ParsedFeed:
    columns_wanted = check_mapping(mapping)
    raw = _HashingReader(_chunks(data), digest)
    text = io.TextIOWrapper(io.BufferedReader(raw, _CHUNK), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    number = 1
    try:
        header = next(reader, None)
        if header is None:
            raise FeedFormatError("the CSV file is empty",
                                  errors=[FieldError("header", "the file has no header row")])
        plan, columns = _header_plan(header, columns_wanted)
        width = len(header)
        feed = ParsedFeed()
        by_id: dict[str, list[int]] = {}
        column_of = columns.__getitem__
        key_at = dict(plan)["employee_id"]
        fields = [field for field, _index in plan]
        cells_of = _getter([index for _field, index in plan])
        for number, cells in enumerate(reader, start=2):
            if not cells or (not cells[0].strip() and not "".join(cells).strip()):
                continue  # a blank line, or a row of empty cells
            feed.rows += 1
            if len(cells) != width and (len(cells) < width or any(cells[width:])):
                employee_id = cells[key_at].strip() if key_at < len(cells) else None
                if employee_id:
                    by_id.setdefault(employee_id, []).append(number)
                feed.errors.append(RowError(
                    number, None, f"the row has {len(cells)} fields where the header has "
                    f"{width}", employee_id or None))
                continue
            values, errors = coerce_values(zip(fields, cells_of(cells), strict=True),
                                           row=number, column_of=column_of)
            employee_id = values.get("employee_id")
            if employee_id is not None:
                by_id.setdefault(employee_id, []).append(number)
            if errors:
                feed.errors.extend(errors)
            else:
                feed.records.append(WorkerRecord(row=number, values=values))
    except UnicodeDecodeError as exc:
        raise FeedFormatError("the file is not UTF-8 text", errors=[FieldError(
            "file", f"bytes that are not UTF-8 near row {number + 1}: {exc.reason}")]) from None
    except csv.Error as exc:
        raise FeedFormatError("the file is not well-formed CSV", errors=[FieldError(
            "file", f"row {number + 1} (line {reader.line_num}): {exc}")]) from None
    duplicated, errors = duplicate_errors(by_id, column_of_row=lambda _row: columns[
        "employee_id"])
    if duplicated:
        feed.records = [r for r in feed.records if r.values["employee_id"] not in duplicated]
        feed.errors.extend(errors)
        feed.errors.sort(key=lambda e: e.row)
    return feed


def parse_csv(data: CsvInput, *, mapping: Mapping[str, str]) -> ParsedFeed:
    """Read an HR CSV feed: bytes, a binary file, or an iterable of byte chunks.

    ``mapping`` maps canonical fields (``attributes.<name>`` for extra attributes) to the
    file's column headers; empty means the headers are the canonical names. Bad rows come
    back as :class:`RowError` values (every problem of the row) and are left out of the
    records, as is every row of an employee id the file gives more than once. A header that
    does not fit the mapping, text that is not UTF-8 or broken quoting raise
    :class:`FeedFormatError` and nothing is read. Unknown columns are ignored.
    """
    return _read(data, mapping, hashlib.sha256())


def parse_csv_stream(stream: IO[bytes] | Iterable[bytes], *, mapping: Mapping[str, str]
                     ) -> tuple[ParsedFeed, str]:
    """:func:`parse_csv` over a binary stream, with the SHA-256 (hex) of every byte read."""
    digest = hashlib.sha256()
    feed = _read(stream, mapping, digest)
    return feed, digest.hexdigest()


def parse_csv_file(path: str | Path, *, mapping: Mapping[str, str]) -> tuple[ParsedFeed, str]:
    """:func:`parse_csv` of the file at ``path``, with its SHA-256 (hex)."""
    with open(path, "rb") as stream:
        return parse_csv_stream(stream, mapping=mapping)


__all__ = ["FeedFormatError", "parse_csv", "parse_csv_file", "parse_csv_stream"]
