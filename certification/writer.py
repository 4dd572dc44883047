"""Writing review items fast: COPY on PostgreSQL, one driver-level executemany on SQLite.

Generation writes up to millions of rows with the same shape. SQLAlchemy's generic insert
spends more time converting each value than the database spends storing it, so rows are
given here as tuples in :data:`COLUMNS` order and converted once, by the rules the column
types use (ids as UUIDs or 32-digit hex, JSON as text, timestamps as the dialect stores
them), then handed to the driver in the session's own transaction. Tests read the rows back
through the ORM on both backends, so a conversion that drifted from SQLAlchemy's would fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
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
