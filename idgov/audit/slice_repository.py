"""Queries of the audit slice export: where the selected events are, where their blocks end,
the chain between two seq numbers. All bounded by the chain head read when the export began."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Row, func, select

from idgov.audit.repository import CHAIN_COLUMNS, Bind, list_query
from idgov.audit.slice_format import SliceFilters
from idgov.models.audit import AuditEvent


def _matching(filters: SliceFilters, through_seq: int) -> Any:
    stmt = list_query(object_type=filters.object_type, object_id=filters.object_id,
                      actor_id=filters.actor_id, action=filters.action,
                      occurred_from=filters.occurred_from, occurred_to=filters.occurred_to)
    return stmt.where(AuditEvent.seq <= through_seq)


def matching_seq_range(bind: Bind, filters: SliceFilters,
                       through_seq: int) -> tuple[int, int] | None:
    """The lowest and highest seq of the sealed events matching ``filters``, or None."""
    sub = _matching(filters, through_seq).subquery()
    row = bind.execute(select(func.min(sub.c.seq), func.max(sub.c.seq))).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def iter_matching_seqs(bind: Bind, filters: SliceFilters, through_seq: int, *,
                       after_seq: int = 0, batch_size: int = 5000) -> Iterator[int]:
    """The seq of every sealed event matching ``filters``, ascending, in keyset batches."""
    base = _matching(filters, through_seq).with_only_columns(AuditEvent.seq)
    last = after_seq
    while True:
        seqs = list(bind.execute(base.where(AuditEvent.seq > last)
                                 .order_by(AuditEvent.seq).limit(batch_size)).scalars())
        yield from seqs
        if len(seqs) < batch_size:
            return
        last = seqs[-1]


def block_end(bind: Bind, seq: int, through_seq: int) -> int:
    """The seq of the signed event that closes the block holding ``seq`` (``seq`` itself when
    it is signed); ``through_seq`` when none does (a broken chain: verification will say)."""
    found = bind.execute(select(func.min(AuditEvent.seq)).where(
        AuditEvent.seq >= seq, AuditEvent.seq <= through_seq,
        AuditEvent.signature.is_not(None))).scalar_one()
    return through_seq if found is None else int(found)


def iter_chain(bind: Bind, first_seq: int, last_seq: int, *,
               batch_size: int = 5000) -> Iterator[Row[Any]]:
    """The sealed events with ``first_seq <= seq <= last_seq`` in seq order, in batches."""
    last = first_seq - 1
    while True:
        rows = bind.execute(select(*CHAIN_COLUMNS)
                            .where(AuditEvent.seq > last, AuditEvent.seq <= last_seq)
                            .order_by(AuditEvent.seq).limit(batch_size)).all()
        yield from rows
        if len(rows) < batch_size:
            return
        last = rows[-1].seq
