"""CSV written by the database itself, byte-identical to :mod:`idgov.reports.formats`.

- **PostgreSQL**: ``COPY (<query>) TO STDOUT WITH (FORMAT csv)`` through psycopg's copy.
  The report's ``Select`` is compiled for the connection's dialect and its parameters merged
  client-side by psycopg (``ClientCursor.mogrify``: each value quoted by psycopg's own
  adapters after SQLAlchemy's bind processors ran, never pasted by hand). Around it, one outer
  ``SELECT`` gives each column the text the Python writer would give: timestamps
  ``to_char(... AT TIME ZONE 'UTC')`` as ISO 8601 with ``+00:00`` (microseconds only when
  there are some), booleans ``true``/``false``. The session time zone is UTC meanwhile.
  COPY ends records with LF; CRLF replaces it outside quoted fields on the way through.
- **SQLite**: the same outer ``SELECT`` turns timestamps (SQLAlchemy's stored text), UUIDs
  (32 hex digits) and booleans into their CSV text, and Python only quotes plain strings
  and joins them, skipping SQLAlchemy's per-value result processing (measured: about half
  the CPU time of the typed Python path). Building whole records in SQL was slower: SQLite
  spends more on per-field CASE/instr than Python on one regex per string.

Only columns whose types both sides format alike qualify (text, integers, numerics on
PostgreSQL, booleans, timestamps, dates, UUIDs); a query with any other column type (floats,
JSON, untyped expressions) is written by the Python path instead: :func:`database_csv_supported`
says which.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    Numeric,
    Select,
    String,
    Uuid,
    case,
    func,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Enum, Float, TypeDecorator, TypeEngine

from idgov.reports.formats import csv_field, csv_header, value_text

COPY_CHUNK_BYTES = 256 * 1024
SQLITE_FETCH = 5_000
_needs_quotes = re.compile(r'[",\r\n]').search

# --- which columns qualify -------------------------------------------------------------------


def _kind(type_: TypeEngine[Any], dialect: str) -> str | None:
    """How a column is formatted in SQL: text, int, bool, tstz, ts, date, uuid; None: not."""
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, Boolean):
        return "bool"
    if isinstance(type_, DateTime):
        return "tstz" if type_.timezone or dialect == "sqlite" else "ts"
    if isinstance(type_, Date):
        return "date"
    if isinstance(type_, Uuid):
        return "uuid" if type_.as_uuid else None
    if isinstance(type_, Float):
        return None
    if isinstance(type_, Integer):
        return "int"
    if isinstance(type_, Numeric):
        return "int" if dialect == "postgresql" else None
    if isinstance(type_, String | Enum):
        return "text"
    return None


def database_csv_supported(query: Select[Any], dialect: str) -> bool:
    """True when the database can write this query's CSV byte-identically."""
    if dialect not in ("postgresql", "sqlite"):
        return False
    return all(_kind(c.type, dialect) is not None for c in query.selected_columns)


# --- PostgreSQL: COPY ------------------------------------------------------------------------


def _pg_column(column: ColumnElement[Any], kind: str) -> ColumnElement[Any]:
    if kind == "bool":
        return case((column.is_(True), "true"), (column.is_(False), "false"))
    if kind in ("tstz", "ts"):
        utc = func.timezone("UTC", column) if kind == "tstz" else column
        fraction = case((func.date_trunc("second", utc) == utc, ""),
                        else_=func.to_char(utc, ".US"))
        return case((column.is_(None), None), else_=(
            func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS').op("||")(fraction)
            .op("||")("+00:00")))
    return column


def _pg_outer(query: Select[Any]) -> Select[Any]:
    inner = query.subquery("report")
    exprs = [_pg_column(col, _kind(col.type, "postgresql") or "text").label(f"c{i}")
             for i, col in enumerate(inner.c)]
    return select(*exprs)


def _compiled(query: Select[Any], dialect: Dialect) -> tuple[str, Any]:
    """SQL text and DBAPI parameters of ``query`` (bind processors applied, as SQLAlchemy
    would), for the driver's own cursor."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    for name, bind in compiled.binds.items():
        if name in params:
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                params[name] = processor(params[name])
    if compiled.positional:
        return compiled.string, [params[name] for name in compiled.positiontup or ()]
    return compiled.string, params


def _bound_sql(query: Select[Any], dialect: Dialect, mogrify: Callable[..., str]) -> str:
    """The SQL of ``query`` with its parameters merged by psycopg (quoted by its adapters)."""
    return mogrify(*_compiled(query, dialect))


def pg_sql_text(session: Session, query: Select[Any]) -> str:
    """The SQL of ``query`` with its parameters merged by psycopg, as COPY runs it (also
    what a benchmark hands to psql)."""
    import psycopg

    connection = session.connection()
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return _bound_sql(query, connection.dialect, psycopg.ClientCursor(raw).mogrify)


def pg_copy_chunks(session: Session, query: Select[Any], columns: Sequence[str],
                   counter: Callable[[int], None] | None = None,
                   rowcount: list[int] | None = None) -> Iterator[bytes]:
    """The header, then ``COPY``'s CSV in blocks of about :data:`COPY_CHUNK_BYTES`.
    ``counter`` hears approximate row counts as blocks pass; ``rowcount`` receives COPY's
    exact count at the end."""
    sql = pg_sql_text(session, _pg_outer(query))
    yield csv_header(columns)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    in_quotes = False
    with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        parts: list[bytes] = []
        size = 0
        for block in copy:
            parts.append(bytes(block))
            size += len(block)
            if size >= COPY_CHUNK_BYTES:
                data, in_quotes = crlf_records(b"".join(parts), in_quotes)
                if counter is not None:
                    counter(len(parts))  # one block per record unless a field holds LF
                yield data
                parts, size = [], 0
        if parts:
            data, in_quotes = crlf_records(b"".join(parts), in_quotes)
            if counter is not None:
                counter(len(parts))
            yield data
    if rowcount is not None:
        rowcount.append(cursor.rowcount)
    cursor.close()


def crlf_records(data: bytes, in_quotes: bool) -> tuple[bytes, bool]:
    """LF record ends turned into CRLF, leaving LFs inside quoted fields alone; ``in_quotes``
    carries the state from one block to the next (a doubled quote toggles twice)."""
    if not in_quotes and b'"' not in data:
        return data.replace(b"\n", b"\r\n"), False
    pieces = data.split(b'"')
    # Piece i lies outside quotes when i is even (odd when the block began inside quotes).
    for i in range(1 if in_quotes else 0, len(pieces), 2):
        pieces[i] = pieces[i].replace(b"\n", b"\r\n")
    quotes = len(pieces) - 1
    return b'"'.join(pieces), in_quotes != (quotes % 2 == 1)


def pg_utc_session(session: Session) -> Callable[[], None]:
    """Set the transaction's time zone to UTC and ISO dates; returns what restores them."""
    before = session.execute(select(func.current_setting("TimeZone"),
                                    func.current_setting("DateStyle"))).one()
    session.execute(select(func.set_config("TimeZone", "UTC", True),
                           func.set_config("DateStyle", "ISO, YMD", True)))

    def restore() -> None:
        with suppress(Exception):
            session.execute(select(func.set_config("TimeZone", before[0], True),
                                   func.set_config("DateStyle", before[1], True)))
    return restore


# --- SQLite: values turned to CSV text in SQL, quoted in Python ----------------------------


def _sqlite_value(column: ColumnElement[Any], kind: str) -> ColumnElement[Any]:
    """One column as the text CSV shows (NULL stays NULL); text and integers pass as they
    are. Cheap operations only: they run once per value of a million-row export."""
    if kind == "bool":
        return case((column == 1, "true"), (column == 0, "false"))
    if kind in ("tstz", "ts"):
        # Stored as "YYYY-MM-DD HH:MM:SS[.ffffff]" (SQLAlchemy's format, CURRENT_TIMESTAMP).
        return case(
            (func.substr(column, 20).in_(["", ".000000"]),
             func.replace(func.substr(column, 1, 19), " ", "T").op("||")("+00:00")),
            else_=func.replace(column, " ", "T").op("||")("+00:00"))
    if kind == "uuid":  # stored as 32 lower-case hex digits
        dashed: ColumnElement[Any] = func.substr(column, 1, 8)
        for start, length in ((9, 4), (13, 4), (17, 4), (21, 12)):
            dashed = dashed.op("||")("-").op("||")(func.substr(column, start, length))
        return dashed
    return column


def _field(value: Any) -> str:
    if value is None:
        return ""
    if value.__class__ is str:
        if value and _needs_quotes(value) is None:
            return str(value)
        return '"' + value.replace('"', '""') + '"'
    return str(value)


def sqlite_csv_chunks(session: Session, query: Select[Any], columns: Sequence[str],
                      counter: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The header, then the records: timestamps, UUIDs and booleans turned to text by
    SQLite, quoting done here on plain values (SQLAlchemy's per-value result processing,
    the slow part of the Python path, is skipped), in chunks of :data:`SQLITE_FETCH` rows."""
    inner = query.subquery("report")
    values = [_sqlite_value(col, _kind(col.type, "sqlite") or "text") for col in inner.c]
    single = len(values) == 1
    connection = session.connection()
    sql, params = _compiled(select(*values), connection.dialect)
    raw = connection.connection.driver_connection
    assert raw is not None
    yield csv_header(columns)
    cursor = raw.cursor()
    cursor.execute(sql, params)
    while batch := cursor.fetchmany(SQLITE_FETCH):
        if single:
            lines = [csv_field(value_text(row[0]), single_column=True) for row in batch]
        else:
            lines = [",".join(map(_field, row)) for row in batch]
        lines.append("")
        yield "\r\n".join(lines).encode("utf-8")
        if counter is not None:
            counter(len(lines) - 1)
    cursor.close()
