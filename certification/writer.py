"""Writing review items fast: COPY on PostgreSQL, one driver-level executemany on SQLite.

Generation writes up to millions of rows with the same shape. SQLAlchemy's generic insert
spends more time converting each value than the database spends storing it, so rows are
given here as tuples in the writer's ``fields`` order and converted once, by the rules the
column types use (ids as UUIDs or 32-digit hex, JSON as text, timestamps as the dialect
stores them), then handed to the driver in the session's own transaction. Tests read the
rows back through the ORM on both backends, so a conversion that drifted from SQLAlchemy's
would fail.

The fast path (:meth:`ItemWriter.submit`) takes rows already in the database's own text
form (ids as :func:`id_text` gives them, JSON as text, booleans) and writes each batch on a
second thread: the database stores one batch (the driver releases the GIL while it waits)
while the caller builds the next, so the two cores of a small machine both work. The
caller must not use the session's connection between ``submit`` and ``wait``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from secrets import randbits
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from certification.models import ReviewItem

_TABLE: Table = ReviewItem.__table__  # type: ignore[assignment]
_UUIDS = frozenset(c.name for c in _TABLE.columns
                   if c.name.endswith("_id") or c.name == "id")
_JSON = frozenset(("context",))
_BOOLS = frozenset(("privileged", "sod_conflict"))
SQLITE_CACHE_KIB = -65_536
_DUMPS = json.JSONEncoder(separators=(", ", ": ")).encode


def id_text(postgres: bool) -> Callable[[uuid.UUID], str]:
    """An id as the database gives it back cast to text: the canonical hyphenated form on
    PostgreSQL, the 32 hex digits SQLAlchemy stores on SQLite."""
    return str if postgres else _hex


def _hex(value: uuid.UUID) -> str:
    return value.hex


def canonical(stored: str) -> str:
    """The hyphenated form of an id in either stored form."""
    if len(stored) == 36:
        return stored
    return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"


class ItemIds:
    """Item ids for one generation, as 32 hex digits, increasing in generation order so
    that the primary key index is appended to rather than written all over: a version 7
    UUID (RFC 9562: 48-bit Unix milliseconds, 12 random bits) whose low 62 bits are 22
    random bits and a 40-bit counter."""

    def __init__(self, now_ms: int) -> None:
        self.high = f"{((now_ms & (2**48 - 1)) << 16) | 0x7000 | randbits(12):016x}"
        self.low = (0b10 << 62) | (randbits(22) << 40)
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.high}{self.low | self.count:016x}"


@contextmanager
def sqlite_cache(session: Session) -> Iterator[None]:
    """A larger SQLite page cache while a million rows go into four indexes (64 MB, then
    back to what it was); nothing on PostgreSQL."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = {SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")


_COPY_TEXT = {None: "\\N", True: "t", False: "f"}


def _sqlite_uuid(value: Any) -> Any:
    if value.__class__ is str:
        return value.replace("-", "")
    return value.hex


class ItemWriter:
    """Appends review item rows to the session's transaction: each row a tuple of the
    values of ``fields``; ``constant`` columns (the same for every row: the campaign, the
    decision, timestamps) are given once and converted once. A column in neither takes no
    value (NULL)."""

    def __init__(self, session: Session, *, fields: Sequence[str],
                 constant: dict[str, Any]) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect
        self.postgres = self.dialect.name == "postgresql"
        unknown = (set(fields) | set(constant)) - set(_TABLE.c.keys())
        if unknown or set(fields) & set(constant):
            raise ValueError(f"bad review item columns: {sorted(unknown) or 'repeated'}")
        self.columns = (*fields, *constant)
        self.plan = [(i, conv) for i, name in enumerate(fields)
                     if (conv := self._converter(name)) is not None]
        self.fixed = tuple(self._convert(name, value) for name, value in constant.items())
        self.json_at = [i for i, name in enumerate(fields) if name in _JSON]
        self.copy_suffix = "".join(
            "\t" + (_COPY_TEXT[v] if v is None or v.__class__ is bool else str(v))
            for v in self.fixed) + "\n"
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def _converter(self, name: str) -> Callable[[Any], Any] | None:
        if name in _JSON:
            return _DUMPS
        if self.postgres:
            return None  # COPY takes UUIDs (or their text), bools and datetimes as they are
        if name in _UUIDS:
            return _sqlite_uuid
        if name in _BOOLS:
            return int
        return _TABLE.c[name].type.bind_processor(self.dialect)

    def _convert(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        conv = self._converter(name)
        return conv(value) if conv is not None else value

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (tuples of the ``fields`` values)."""
        if not rows:
            return
        plan, fixed = self.plan, self.fixed
        converted: list[list[Any]] = []
        for row in rows:
            values = list(row)
            for i, conv in plan:
                value = values[i]
                if value is not None:
                    values[i] = conv(value)
            values.extend(fixed)
            converted.append(values)
        connection = self.session.connection()
        columns = ", ".join(self.columns)
        if self.postgres:
            raw: Any = connection.connection.driver_connection
            with raw.cursor() as cursor, cursor.copy(
                    f"COPY {_TABLE.name} ({columns}) FROM STDIN") as copy:
                for values in converted:
                    copy.write_row(values)
            return
        marks = ", ".join("?" * len(self.columns))
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:  # the column names come from the table, checked above
            cursor.executemany(f"INSERT INTO {_TABLE.name} ({columns}) VALUES ({marks})",  # noqa: S608
                               converted)
        finally:
            cursor.close()

    def submit(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write ``rows`` (tuples of the ``fields`` values in stored text form: ids as
        :func:`id_text` gives them, JSON as text, booleans, None) on the writer's thread,
        after the previous batch; returns at once. Use the connection again only after
        :meth:`wait`."""
        self.wait()
        if not rows:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="item-writer")
        self._pending = self._pool.submit(self._write_stored, rows)

    def wait(self) -> None:
        """Until the submitted batch is written; raises what writing it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last batch, then stop the writer's thread."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # let a batch in flight finish, keep the first error
            pending, self._pending = self._pending, None
            if pending is not None:
                pending.exception()
        self.close()

    def _write_stored(self, rows: Sequence[Sequence[Any]]) -> None:
        connection = self.session.connection()
        columns = ", ".join(self.columns)
        driver: Any = connection.connection.driver_connection
        if self.postgres:
            text, suffix, json_at = _COPY_TEXT, self.copy_suffix, self.json_at
            lines = []
            for row in rows:
                values = [v if v.__class__ is str else text[v] for v in row]
                for i in json_at:  # COPY text format: a backslash is written twice
                    values[i] = values[i].replace("\\", "\\\\")
                lines.append("\t".join(values) + suffix)
            with driver.cursor() as cursor, cursor.copy(
                    f"COPY {_TABLE.name} ({columns}) FROM STDIN") as copy:
                copy.write("".join(lines))
            return
        fixed = self.fixed
        marks = ", ".join("?" * len(self.columns))
        cursor = driver.cursor()
        try:  # the column names come from the table, checked above
            cursor.executemany(f"INSERT INTO {_TABLE.name} ({columns}) VALUES ({marks})",  # noqa: S608
                               [(*row, *fixed) for row in rows])
        finally:
            cursor.close()
