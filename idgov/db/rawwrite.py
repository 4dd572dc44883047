"""Writing many rows of one table fast: COPY on PostgreSQL, one driver-level executemany on
SQLite, in the session's own transaction.

Bulk work (an HR snapshot's joiners: identities, assignments, provisioning operations, audit
events; some 33 rows per worker) writes hundreds of thousands of rows of the same shape.
SQLAlchemy's generic insert spends more time building and converting each row's parameters
than the database spends storing it. :class:`RowWriter` converts each value once, by the
rules the column types use (the tests compare the stored rows with SQLAlchemy's byte for
byte), and hands the rows to the driver:

- SQLite: ids as 32 hex digits, timestamps as SQLAlchemy's text (converted once per distinct
  value: most rows of a chunk share the same few instants), JSON as ``json.dumps`` text (a
  Python ``None`` in a JSON column is the JSON ``null``, as SQLAlchemy stores it), booleans
  as integers;
- PostgreSQL: ``COPY ... FROM STDIN`` through psycopg's ``cursor.copy`` (its C code adapts
  UUIDs, timestamps, booleans and numbers), JSON given as its ``json.dumps`` text.

Columns a row leaves out take their Python-side default (``default=``) like SQLAlchemy's
insert, else the database's (``server_default``), else NULL. Rows are complete in one
respect SQLAlchemy's insert is not: every row has the same columns (those of the first).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Column, Date, Integer, String, Table, Uuid, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from idgov.db.base import UTCDateTime

# SQLAlchemy's JSON type serialises with json.dumps' defaults; so does this.
_DUMPS = json.JSONEncoder().encode


def _json(value: Any) -> str:
    return _DUMPS(value)


def _hex(value: Any) -> str:
    if value.__class__ is uuid.UUID:
        return value.hex
    if value.__class__ is str and len(value) == 36:  # the canonical text (new_id_text, str())
        return value.replace("-", "")
    return uuid.UUID(str(value)).hex


# The variant digit of an RFC 9562 UUID: 10xx in binary.
_VARIANT = {f"{n:x}": "89ab"[n & 3] for n in range(16)}


def new_id_text() -> str:
    """A new random (version 4) UUID in its canonical text form, as ``str(uuid.uuid4())``
    gives it (from the same source, os.urandom), in a fraction of the time: bulk work makes
    hundreds of thousands of ids."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _memoised(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` computed once per distinct value (for immutable, hashable values)."""
    done: dict[Any, Any] = {}

    def once(value: Any) -> Any:
        try:
            return done[value]
        except KeyError:
            out = done[value] = convert(value)
            return out
    return once


def _json_none_is_null(column: Column[Any]) -> bool:
    """True when ``None`` in this JSON column is stored as the JSON ``null`` text."""
    return not getattr(column.type, "none_as_null", False)


_DRIVERS = frozenset({("sqlite", "pysqlite"), ("postgresql", "psycopg")})
# The column types whose conversion tests/lifecycle/test_bulk_writer.py checks.
_KNOWN_TYPES = (Uuid, JSON, String, Integer, Boolean, UTCDateTime, Date)
_SUPPORTED: dict[str, bool] = {}


class RowWriter:
    """Appends rows of one table to the session's transaction, each row a tuple of the values
    of ``columns`` (in that order)."""

    def __init__(self, session: Session, model: Any, columns: Sequence[str]) -> None:
        self.session = session
        self.table = cast(Table, model.__table__)
        dialect: Dialect = session.get_bind().dialect
        self.dialect = dialect
        self.postgres = dialect.name == "postgresql"
        unknown = set(columns) - set(self.table.c.keys())
        if unknown:
            raise ValueError(f"no such columns in {self.table.name}: {sorted(unknown)}")
        self.given = tuple(columns)
        # Python-side defaults of the columns the rows leave out (SQLAlchemy applies them too).
        self.defaults: list[tuple[Callable[[], Any] | None, Any]] = []
        extra: list[str] = []
        for column in self.table.columns:
            default = column.default
            if column.name in columns or default is None or not hasattr(default, "arg"):
                continue
            arg: Any = default.arg
            if getattr(default, "is_callable", False):
                self.defaults.append((partial(arg, None), None))  # wrapped: takes a context
            else:
                self.defaults.append((None, arg))
            extra.append(column.name)
        self.columns = (*self.given, *extra)
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        self.json_nulls: list[int] = []
        for i, name in enumerate(self.columns):
            column = self.table.c[name]
            convert = self._converter(column, dialect)
            if convert is not None:
                self.converters.append((i, convert))
            if isinstance(column.type, JSON) and _json_none_is_null(column):
                self.json_nulls.append(i)
        names = ", ".join(self.columns)
        if self.postgres:
            self.statement = f"COPY {self.table.name} ({names}) FROM STDIN"
        else:  # the names come from the table (checked above), never from input
            marks = ", ".join("?" * len(self.columns))
            self.statement = f"INSERT INTO {self.table.name} ({names}) VALUES ({marks})"  # noqa: S608

    @staticmethod
    def supports(session: Session, model: Any) -> bool:
        """True when every column of ``model``'s table has a type this writer converts as
        SQLAlchemy does (the tests compare the stored rows), on a driver it knows."""
        dialect = session.get_bind().dialect
        if (dialect.name, dialect.driver) not in _DRIVERS:
            return False
        table = cast(Table, model.__table__)
        known = _SUPPORTED.get(table.name)
        if known is None:
            known = _SUPPORTED[table.name] = all(
                isinstance(c.type, _KNOWN_TYPES) for c in table.columns)
        return known

    def _converter(self, column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
        kind = column.type
        if isinstance(kind, JSON):
            return _json
        if self.postgres:
            return None  # psycopg's COPY adapts UUIDs, timestamps, booleans and numbers
        if isinstance(kind, Uuid):
            return _hex
        process = kind._cached_bind_processor(dialect)  # SQLAlchemy's own conversion
        if process is None:
            return None
        if isinstance(kind, UTCDateTime):
            return _memoised(process)
        return process

    def write(self, rows: Iterable[Sequence[Any]], *, pipeline: Pipeline | None = None) -> int:
        """Insert ``rows`` (tuples of the ``columns`` values); returns how many. With a
        ``pipeline`` the rows are converted here and stored on its thread."""
        converters, json_nulls, defaults = self.converters, self.json_nulls, self.defaults
        converted: list[list[Any]] = []
        for row in rows:
            values = list(row)
            for make, constant in defaults:
                values.append(make() if make is not None else constant)
            for i, convert in converters:
                value = values[i]
                if value is not None:
                    values[i] = convert(value)
            for i in json_nulls:
                if values[i] is None:
                    values[i] = "null"
            converted.append(values)
        if not converted:
            return 0
        self.session.flush()
        driver: Any = self.session.connection().connection.driver_connection
        if pipeline is None:
            self._send(driver, converted)
        else:
            pipeline.submit(self._send, driver, converted)
        return len(converted)

    def _send(self, driver: Any, converted: list[list[Any]]) -> None:
        dbapi: Any = self.dialect.loaded_dbapi
        try:
            if self.postgres:
                with driver.cursor() as cursor, cursor.copy(self.statement) as copy:
                    write_row = copy.write_row
                    for values in converted:
                        write_row(values)
            else:
                cursor = driver.cursor()
                try:
                    cursor.executemany(self.statement, converted)
                finally:
                    cursor.close()
        except dbapi.Error as error:  # as SQLAlchemy reports it (IntegrityError, ...)
            raise DBAPIError.instance(self.statement, None, error, dbapi.Error) from error

    def write_dicts(self, rows: Sequence[Mapping[str, Any]], *,
                    pipeline: Pipeline | None = None) -> int:
        """Insert ``rows`` given as column dicts (each with at least the writer's columns)."""
        if not rows:
            return 0
        pick = itemgetter(*self.given)
        if len(self.given) == 1:
            return self.write(((pick(r),) for r in rows), pipeline=pipeline)
        return self.write((pick(r) for r in rows), pipeline=pipeline)


def insert_dicts(session: Session, model: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (column dicts, all with the keys of the first) into ``model``'s table
    through the driver; returns how many."""
    if not rows:
        return 0
    return RowWriter(session, model, list(rows[0])).write_dicts(rows)


class Pipeline:
    """Stores rows on one background thread, in the order given, while the caller builds the
    next ones: PostgreSQL stores a COPY while Python prepares the next, so the two cores of
    a small machine both work (on SQLite the writes run at once on the caller's thread).

    Whatever SQLAlchemy runs on the session's connection meanwhile (a query, a flush, the
    commit or rollback) first waits until every submitted write is stored, and a write that
    failed raises there; :meth:`close` waits too. Use it as a context manager around the
    bulk work, and give the rows to :meth:`RowWriter.write` with ``pipeline=``.
    """

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        # On SQLite the rows are stored at once, on the caller's thread: its executemany
        # gives up the GIL for every row and waits to get it back, slower than not
        # overlapping at all.
        self._pool = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="row-writer")
                      if self.connection.dialect.name == "postgresql" else None)
        self._pending: list[Future[None]] = []
        self._at_close: list[Callable[[], None]] = []
        # What the users of the pipeline keep between their writes (the audit chain head).
        self.state: dict[str, Any] = {}
        for name in _WAIT_BEFORE:
            event.listen(self.connection, name, self._before)

    def submit(self, send: Callable[..., None], *args: Any) -> None:
        """Run ``send(*args)`` on the writer's thread after the writes submitted before;
        waits first while the writer is more than a few writes behind (memory stays flat)."""
        if self._pool is None:
            send(*args)
            return
        while len(self._pending) >= _MAX_PENDING:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(send, *args))

    def at_close(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the pipeline closes normally, after the last write."""
        self._at_close.append(action)

    def wait(self) -> None:
        """Until every submitted write is stored; raises the first one's error."""
        pending, self._pending = self._pending, []
        error: BaseException | None = None
        for future in pending:
            failed = future.exception()
            if failed is not None and error is None:
                error = failed
        if error is not None:
            raise error

    def _before(self, *_args: Any, **_kwargs: Any) -> None:
        self.wait()

    def close(self) -> None:
        """Wait for the last writes, run the :meth:`at_close` actions, then stop listening
        and the writer's thread."""
        try:
            self.wait()
            for action in self._at_close:
                action()
        finally:
            for name in _WAIT_BEFORE:
                event.remove(self.connection, name, self._before)
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_exc: object) -> None:
        if kind is None:
            self.close()
            return
        # The caller's error comes first (the transaction is rolled back anyway): writes
        # still in flight only finish, and the at_close actions do not run.
        self._at_close.clear()
        with suppress(Exception):
            self.close()


# Writes submitted and not yet stored, at most (each a table's rows of one chunk).
_MAX_PENDING = 8
# Connection events before which the connection must be free of the writer's thread.
_WAIT_BEFORE = ("before_cursor_execute", "commit", "rollback", "begin_twophase")

