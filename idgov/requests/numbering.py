"""Request and line numbers: ``REQ-2026-000001``, ``RITM-2026-000001``, never reused.

One row per (series, year) in ``number_sequences`` is incremented by a single
``INSERT .. ON CONFLICT DO UPDATE .. RETURNING`` statement: PostgreSQL takes the row lock
until the transaction ends, SQLite the database write lock, so two transactions never get the
same number. A number handed out in a transaction that rolls back was never seen by anyone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from idgov.models.requests import NumberSequence

REQUEST_SERIES = "REQ"
LINE_SERIES = "RITM"
WIDTH = 6


def format_number(series: str, year: int, value: int) -> str:
    return f"{series}-{year}-{value:0{WIDTH}d}"


def next_value(session: Session, series: str, year: int) -> int:
    """Increment and return the counter of ``series`` in ``year`` (1 for the first)."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = NumberSequence.__table__
    stmt = (insert(table).values(series=series, year=year, last_value=1)
            .on_conflict_do_update(index_elements=[table.c.series, table.c.year],
                                   set_={"last_value": table.c.last_value + 1})
            .returning(table.c.last_value))
    value: int = session.execute(stmt).scalar_one()
    return value


def next_number(session: Session, series: str, year: int) -> str:
    """The next number of ``series`` for ``year``, e.g. ``REQ-2026-000042``."""
    return format_number(series, year, next_value(session, series, year))
