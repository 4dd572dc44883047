"""Writing the audit trail: record events in the caller's transaction, seal them at commit.

Every state-changing service function calls :func:`record` in the same transaction as the
change. :func:`install_sealer` hooks the session factory so that, just before each commit,
the transaction's new events are appended to the hash chain under a lock on the single chain
head row and the new head is signed (one signature per transaction, covering the block).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from idgov.audit import repository
from idgov.audit.canonical import GENESIS_HASH, event_hash, jsonable_hash, to_jsonable
from idgov.audit.schemas import AuditEventFilter
from idgov.audit.signing import Signer, block_message
from idgov.clock import Clock
from idgov.db.repository import Page, bulk_insert, get_or_404
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


@dataclass(frozen=True)
class EventSpec:
    """One event for :func:`record_many`: what happened to which object."""

    action: str
    object_type: str
    object_id: Any
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


def record_many(session: Session, events: Iterable[EventSpec], *, actor: Actor,
                clock: Clock) -> int:
    """Append many events to the chain at once, for bulk work (an HR snapshot's joiners).

    Unlike :func:`record`, the events are sealed right away, inside the caller's
    transaction (the chain head stays locked until it commits or rolls back), and written
    with one multi-row insert, already hashed, with one signature over the block. Give the
    events in chunks of a few thousand to keep memory flat. Returns how many were written.
    """
    signer = session_signer(session)
    if signer is None:
        raise RuntimeError("audit events recorded on a session without a signer")
    occurred_at = clock.now()
    occurred_text = to_jsonable(occurred_at)
    jsonable = _BulkJsonable()
    rows: list[dict[str, Any]] = []
    for spec in events:
        rows.append({
            "id": uuid.uuid4(), "occurred_at": occurred_at, "actor_type": actor.type,
            "actor_id": actor.id, "actor_name": actor.name, "action": spec.action,
            "object_type": spec.object_type,
            "object_id": None if spec.object_id is None else str(spec.object_id),
            "before": jsonable(spec.before) if spec.before is not None else None,
            "after": jsonable(spec.after) if spec.after is not None else None,
            "context": jsonable(spec.context) if spec.context is not None else None,
            "signature": None,
        })
    if not rows:
        return 0
    session.flush()
    head = _lock_head(session)
    seq, prev = head.seq, head.hash
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"], row["key_id"] = seq, prev, signer.key_id
        row["hash"] = prev = jsonable_hash(_chain_dict(row, occurred_text))
    rows[-1]["signature"] = signer.sign(block_message(seq, prev))
    bulk_insert(session, AuditEvent, rows)
    session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=seq, hash=prev))
    head.seq, head.hash = seq, prev
    return len(rows)


_PLAIN = frozenset({str, int, bool, float, type(None)})


class _BulkJsonable:
    """:func:`to_jsonable` of an event's before/after/context, with the same result, made
    cheaper for bulk work: the values of a mapping that are already plain are taken as
    they are, UUIDs are turned into text directly, and timestamps and dates (mostly the
    same few objects over and over; immutable) are converted once per object."""

    def __init__(self) -> None:
        self.done: dict[int, tuple[Any, Any]] = {}  # id -> (the object, kept alive; text)

    def __call__(self, value: Any) -> Any:
        if value.__class__ is not dict:
            return to_jsonable(value)
        out: dict[str, Any] = {}
        for key, item in value.items():
            kind = item.__class__
            if kind in _PLAIN:
                pass
            elif kind is uuid.UUID:
                item = str(item)
            elif kind is datetime or kind is date:
                known = self.done.get(id(item))
                if known is None:
                    known = self.done[id(item)] = (item, to_jsonable(item))
                item = known[1]
            else:
                item = to_jsonable(item)
            out[key if key.__class__ is str else str(key)] = item
        return out


def _chain_dict(row: dict[str, Any], occurred_text: str | None = None) -> dict[str, Any]:
    return {
        "seq": row["seq"], "id": str(row["id"]),
        "occurred_at": occurred_text or to_jsonable(row["occurred_at"]),
        "actor_type": row["actor_type"], "actor_id": row["actor_id"],
        "actor_name": row["actor_name"], "action": row["action"],
        "object_type": row["object_type"], "object_id": row["object_id"],
        "before": row["before"], "after": row["after"], "context": row["context"],
        "prev_hash": row["prev_hash"], "key_id": row["key_id"],
    }


_CHAIN_FIELDS = ("seq", "id", "occurred_at", "actor_type", "actor_id", "actor_name", "action",
                 "object_type", "object_id", "before", "after", "context", "prev_hash", "key_id")


def chain_record(event: AuditEvent) -> dict[str, Any]:
    """The fields an event's hash covers, in the form that is hashed."""
    return _chain_dict({name: getattr(event, name) for name in _CHAIN_FIELDS})


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
