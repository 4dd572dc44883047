"""Audit trail queries: the chain in seq order, in batches; the list of events for the API."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select
from sqlalchemy.orm import Session

from idgov.db.repository import DEFAULT_LIMIT, Page
from idgov.errors import FieldError, InvalidInput
from idgov.models.audit import AuditChainHead, AuditEvent

Bind = Session | Connection

# The columns verification reads: exactly what chain_record() hashes, plus hash and signature.
CHAIN_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.id,
    AuditEvent.occurred_at,
    AuditEvent.actor_type,
    AuditEvent.actor_id,
    AuditEvent.actor_name,
    AuditEvent.action,
    AuditEvent.object_type,
    AuditEvent.object_id,
    AuditEvent.before,
    AuditEvent.after,
    AuditEvent.context,
    AuditEvent.prev_hash,
    AuditEvent.hash,
    AuditEvent.key_id,
    AuditEvent.signature,
)


def iter_sealed(bind: Bind, *, after_seq: int = 0, batch_size: int = 5000) -> Iterator[Row[Any]]:
    """Sealed events with ``seq > after_seq`` in seq order, fetched in keyset batches.

    Each batch is one short query on the unique seq index, so memory stays flat however long
    the chain is, and no cursor is held open between batches.
    """
    last = after_seq
    while True:
        stmt = (select(*CHAIN_COLUMNS).where(AuditEvent.seq > last)
                .order_by(AuditEvent.seq).limit(batch_size))
        rows = bind.execute(stmt).all()
        yield from rows
        if len(rows) < batch_size:
            return
        last = rows[-1].seq


def read_head(bind: Bind) -> tuple[int, str] | None:
    """The chain head row (last sealed seq and hash), or None before the first seal."""
    row = bind.execute(select(AuditChainHead.seq, AuditChainHead.hash)
                       .where(AuditChainHead.id == 1)).first()
    return None if row is None else (row.seq, row.hash)


def unsealed_counts(bind: Bind, *, cutoff: datetime) -> tuple[int, int]:
    """Events without a seq: how many occurred before ``cutoff`` and how many since."""
    unsealed = AuditEvent.seq.is_(None)
    stale = bind.execute(select(func.count()).select_from(AuditEvent)
                         .where(unsealed, AuditEvent.occurred_at < cutoff)).scalar_one()
    recent = bind.execute(select(func.count()).select_from(AuditEvent)
                          .where(unsealed, AuditEvent.occurred_at >= cutoff)).scalar_one()
    return stale, recent


def oldest_unsealed(bind: Bind, *, cutoff: datetime, limit: int) -> list[tuple[Any, datetime]]:
    """The oldest events without a seq that occurred before ``cutoff``, as (id, occurred_at)."""
    rows = bind.execute(select(AuditEvent.id, AuditEvent.occurred_at)
                        .where(AuditEvent.seq.is_(None), AuditEvent.occurred_at < cutoff)
                        .order_by(AuditEvent.occurred_at, AuditEvent.id).limit(limit)).all()
    return [(r.id, r.occurred_at) for r in rows]


def encode_seq_cursor(seq: int) -> str:
    raw = json.dumps({"seq": seq}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_seq_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["seq"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _bad_cursor() from exc
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad_cursor()
    return value


def _bad_cursor() -> InvalidInput:
    return InvalidInput("the cursor is not one this service issued",
                        errors=[FieldError("cursor", "malformed cursor")])


def list_query(*, object_type: str | None, object_id: str | None, actor_id: str | None,
               action: str | None, occurred_from: datetime | None,
               occurred_to: datetime | None) -> Select[AuditEvent]:
    """Sealed events matching the filters (``occurred_from`` inclusive, ``occurred_to`` not)."""
    stmt = select(AuditEvent).where(AuditEvent.seq.is_not(None))
    for column, value in ((AuditEvent.object_type, object_type),
                          (AuditEvent.object_id, object_id),
                          (AuditEvent.actor_id, actor_id),
                          (AuditEvent.action, action)):
        if value is not None:
            stmt = stmt.where(column == value)
    if occurred_from is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= occurred_from)
    if occurred_to is not None:
        stmt = stmt.where(AuditEvent.occurred_at < occurred_to)
    return stmt


def page_by_seq(session: Session, stmt: Select[AuditEvent], *, limit: int | None,
                cursor: str | None) -> Page[AuditEvent]:
    """One page of ``stmt`` in chain order; the cursor carries the last seq seen."""
    size = DEFAULT_LIMIT if limit is None else limit
    if cursor:
        stmt = stmt.where(AuditEvent.seq > decode_seq_cursor(cursor))
    rows: Sequence[AuditEvent] = list(
        session.scalars(stmt.order_by(AuditEvent.seq).limit(size + 1)))
    last_seq = rows[size - 1].seq if len(rows) > size else None
    next_cursor = encode_seq_cursor(last_seq) if last_seq is not None else None
    return Page(items=rows[:size], next_cursor=next_cursor)
