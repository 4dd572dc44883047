"""The generic part of every repository: fetch by id, keyset pagination."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Select, Table, select
from sqlalchemy.orm import Session

from idgov.db.rawwrite import RowWriter, insert_dicts
from idgov.errors import FieldError, InvalidInput, NotFound

T = TypeVar("T")

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next one (None at the end)."""

    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_id: uuid.UUID) -> str:
    raw = json.dumps({"after": str(last_id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return uuid.UUID(data["after"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput(
            "the cursor is not one this service issued",
            errors=[FieldError("cursor", "malformed cursor")],
        ) from exc


def paginate(session: Session, stmt: Select[Any], model: Any, *, limit: int | None,
             cursor: str | None) -> Page[Any]:
    """Run ``stmt`` (a select of ``model``) as one keyset page ordered by id."""
    size = DEFAULT_LIMIT if limit is None else limit
    if size < 1 or size > MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}",
            errors=[FieldError("limit", f"must be between 1 and {MAX_LIMIT}")],
        )
    if cursor:
        stmt = stmt.where(model.id > decode_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(model.id).limit(size + 1)))
    next_cursor = encode_cursor(rows[size - 1].id) if len(rows) > size else None
    return Page(items=rows[:size], next_cursor=next_cursor)


def get_or_404(session: Session, model: type[T], object_id: uuid.UUID, *,
               what: str | None = None, options: Sequence[Any] = ()) -> T:
    """Load one row by primary key or raise ``NotFound``."""
    stmt = select(model).where(model.id == object_id)  # type: ignore[attr-defined]
    if options:
        stmt = stmt.options(*options)
    obj = session.scalars(stmt).one_or_none()
    if obj is None:
        label = what or getattr(model, "__tablename__", "object").rstrip("s")
        raise NotFound(f"{label} {object_id} does not exist")
    return obj


def require_exists(session: Session, model: Any, object_id: uuid.UUID | None,
                   field_name: str) -> None:
    """Raise InvalidInput (422) when a reference points to nothing."""
    if object_id is None:
        return
    found = session.scalar(select(model.id).where(model.id == object_id))
    if found is None:
        raise InvalidInput(
            f"{field_name} refers to nothing",
            errors=[FieldError(field_name, f"no {model.__tablename__.rstrip('s')} {object_id}")],
        )


def bulk_insert(session: Session, model: Any, rows: Sequence[Mapping[str, Any]], *,
                chunk: int = 5000) -> None:
    """Insert ``rows`` (complete column dicts, all with the same keys) into ``model``'s
    table: through the driver (:mod:`idgov.db.rawwrite`: COPY, executemany) when every
    column's type is one it converts as SQLAlchemy does, else with multi-row statements of
    the core insert; never the ORM's per-object path (bulk work, no identity map)."""
    if not rows:
        return
    if RowWriter.supports(session, model):
        insert_dicts(session, model, rows)
        return
    table = cast(Table, model.__table__)
    for start in range(0, len(rows), chunk):
        session.execute(table.insert(), list(rows[start:start + chunk]))
