"""SIEM queries: sealed events after a seq, the catalog facts of the privileged rule, sinks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, select, update
from sqlalchemy.orm import Session

from idgov.audit.repository import CHAIN_COLUMNS, read_head
from idgov.models.audit import AuditEvent
from idgov.models.catalog import Entitlement, RoleEntitlement, RoleInclusion
from idgov.models.siem import SiemSink
from idgov.siem.privileged import Catalog, Link


def sealed_after(session: Session, *, after_seq: int, limit: int) -> Sequence[Row[Any]]:
    """At most ``limit`` sealed events with ``seq > after_seq``, in seq order (one keyset
    query on the unique seq index). Seqs are given out under the chain head's lock at
    commit, so a committed seq never appears after a larger one: no event is skipped."""
    return session.execute(
        select(*CHAIN_COLUMNS).where(AuditEvent.seq > after_seq)
        .order_by(AuditEvent.seq).limit(limit)).all()


def head_seq(session: Session) -> int:
    """The last sealed seq (0 before the first event)."""
    head = read_head(session)
    return 0 if head is None else head[0]


def catalog_for(session: Session, *, entitlement_ids: Iterable[uuid.UUID],
                with_roles: bool) -> Catalog:
    """The catalog facts :mod:`idgov.siem.privileged` needs: which of ``entitlement_ids``
    are privileged and, when ``with_roles``, every inclusion link and every role -> privileged
    entitlement link (all windows: the rule picks those in force at each event)."""
    wanted = list(set(entitlement_ids))
    privileged: set[uuid.UUID] = set()
    if wanted:
        privileged.update(session.scalars(select(Entitlement.id).where(
            Entitlement.id.in_(wanted), Entitlement.privileged.is_(True))))
    if not with_roles:
        return Catalog(privileged_entitlements=frozenset(privileged))
    grants = tuple(
        Link(r.role_id, r.entitlement_id, r.valid_from, r.valid_until)
        for r in session.execute(
            select(RoleEntitlement.role_id, RoleEntitlement.entitlement_id,
                   RoleEntitlement.valid_from, RoleEntitlement.valid_until)
            .join(Entitlement, Entitlement.id == RoleEntitlement.entitlement_id)
            .where(Entitlement.privileged.is_(True))))
    inclusions = tuple(
        Link(r.parent_role_id, r.child_role_id, r.valid_from, r.valid_until)
        for r in session.execute(
            select(RoleInclusion.parent_role_id, RoleInclusion.child_role_id,
                   RoleInclusion.valid_from, RoleInclusion.valid_until)))
    return Catalog(privileged_entitlements=frozenset(privileged), inclusions=inclusions,
                   privileged_grants=grants)


def list_query() -> Select[tuple[SiemSink]]:
    return select(SiemSink)


def enabled_sink_ids(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(SiemSink.id).where(SiemSink.enabled.is_(True))
                                .order_by(SiemSink.name)))


def name_taken(session: Session, name: str, *, exclude: uuid.UUID | None = None) -> bool:
    stmt = select(SiemSink.id).where(func.lower(SiemSink.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(SiemSink.id != exclude)
    return session.scalar(stmt.limit(1)) is not None


def advance_cursor(session: Session, sink_id: uuid.UUID, *, expected: int, to: int,
                   at: datetime) -> bool:
    """Move the sink's cursor from ``expected`` to ``to`` and clear its error; False (and
    nothing changed) when the cursor is no longer ``expected`` (an administrator moved it
    while the batch was on the wire)."""
    result = session.execute(
        update(SiemSink).where(SiemSink.id == sink_id, SiemSink.cursor_seq == expected)
        .values(cursor_seq=to, last_sent_at=at, last_error=None,
                updated_at=SiemSink.updated_at)  # bookkeeping: not a change of the sink
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


def set_error(session: Session, sink_id: uuid.UUID, *, message: str) -> None:
    """Note why delivery failed; the cursor stays where it is."""
    session.execute(update(SiemSink).where(SiemSink.id == sink_id)
                    .values(last_error=message[:2000], updated_at=SiemSink.updated_at)
                    .execution_options(synchronize_session=False))
