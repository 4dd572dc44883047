"""Writing the audit trail: record events in the caller's transaction, seal them at commit.

Every state-changing service function calls :func:`record` in the same transaction as the
change. :func:`install_sealer` hooks the session factory so that, just before each commit,
the transaction's new events are appended to the hash chain under a lock on the single chain
head row and the new head is signed (one signature per transaction, covering the block).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from idgov.audit import repository
from idgov.audit.canonical import GENESIS_HASH, event_hash, to_jsonable
from idgov.audit.schemas import AuditEventFilter
from idgov.audit.signing import Signer, block_message
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404
from idgov.models.audit import AuditChainHead, AuditEvent
from idgov.types import Actor

_PENDING = "idgov.audit.pending"
_SIGNER = "idgov.audit.signer"


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    clock: Clock,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the current transaction; it is sealed when the transaction commits."""
    event = AuditEvent(
        id=uuid.uuid4(),
        occurred_at=clock.now(),
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=to_jsonable(before) if before is not None else None,
        after=to_jsonable(after) if after is not None else None,
        context=to_jsonable(context) if context is not None else None,
    )
    session.add(event)
    session.info.setdefault(_PENDING, []).append(event)
    return event


def chain_record(event: AuditEvent) -> dict[str, Any]:
    """The fields an event's hash covers, in the form that is hashed."""
    return {
        "seq": event.seq,
        "id": str(event.id),
        "occurred_at": to_jsonable(event.occurred_at),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "context": event.context,
        "prev_hash": event.prev_hash,
        "key_id": event.key_id,
    }


def _lock_head(session: Session) -> AuditChainHead:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(AuditChainHead)
        .values(id=1, seq=0, hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    stmt = select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def seal(session: Session, events: list[AuditEvent], signer: Signer) -> None:
    """Append ``events`` to the chain and sign the new head. Runs inside the transaction."""
    if not events:
        return
    session.flush()
    head = _lock_head(session)
    seq, prev = head.seq, head.hash
    for event in events:
        seq += 1
        event.seq = seq
        event.prev_hash = prev
        event.key_id = signer.key_id
        event.hash = event_hash(chain_record(event))
        prev = event.hash
    events[-1].signature = signer.sign(block_message(seq, prev))
    session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=seq, hash=prev))
    session.flush()


def _before_commit(session: Session) -> None:
    # Events discarded with a rolled-back savepoint are no longer in the session.
    pending = [e for e in session.info.pop(_PENDING, []) if inspect(e).persistent
               or inspect(e).pending]
    if not pending:
        return
    signer: Signer | None = session.info.get(_SIGNER)
    if signer is None:
        raise RuntimeError("audit events recorded on a session without a signer")
    seal(session, pending, signer)


def _after_rollback(session: Session, transaction: SessionTransaction) -> None:
    # A rolled-back savepoint keeps the events recorded before it: they must still be sealed.
    if not transaction.nested:
        session.info.pop(_PENDING, None)


def install_sealer(factory: sessionmaker[Session], signer: Signer) -> None:
    """Make every session of ``factory`` seal its audit events at commit with ``signer``."""
    factory.configure(info={_SIGNER: signer})
    sa_event.listen(factory, "before_commit", _before_commit)
    sa_event.listen(factory, "after_soft_rollback", _after_rollback)


def session_signer(session: Session) -> Signer | None:
    """The signer that seals this session's events (None when the session has no sealer)."""
    signer: Signer | None = session.info.get(_SIGNER)
    return signer


# Columns whose values never enter the trail (secrets, hashes of secrets).
_NEVER_AUDITED = frozenset({"credentials_encrypted", "secret_hash"})


def snapshot(obj: Any, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The column values of an ORM object, for an event's before/after (secrets left out)."""
    mapper = inspect(type(obj))
    skip = _NEVER_AUDITED | exclude | {"created_at", "updated_at"}
    return {
        attr.key: to_jsonable(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in skip
    }


# Reading the trail (the API). The chain itself is checked by idgov.audit.verify.


def list_events(session: Session, *, filters: AuditEventFilter) -> Page[AuditEvent]:
    """Sealed events matching ``filters``, in chain (seq) order, one page at a time."""
    stmt = repository.list_query(
        object_type=filters.object_type, object_id=filters.object_id,
        actor_id=filters.actor_id, action=filters.action,
        occurred_from=filters.occurred_from, occurred_to=filters.occurred_to)
    return repository.page_by_seq(session, stmt, limit=filters.limit, cursor=filters.cursor)


def get_event(session: Session, *, event_id: uuid.UUID) -> AuditEvent:
    """One event by id, sealed or not; NotFound when there is none."""
    return get_or_404(session, AuditEvent, event_id, what="audit event")


def apply_changes(session: Session, obj: Any, changes: dict[str, Any], *, action: str,
                  object_type: str, actor: Actor, clock: Clock) -> None:
    """Set ``changes`` on ``obj``, stamp ``updated_at``, flush, and audit before and after."""
    before = snapshot(obj)
    for key, value in changes.items():
        setattr(obj, key, value)
    obj.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action=action, object_type=object_type, object_id=obj.id,
           clock=clock, before=before, after=snapshot(obj))
