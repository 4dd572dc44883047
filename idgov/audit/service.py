"""Writing the audit trail: record events in the caller's transaction, seal them at commit.

Every state-changing service function calls :func:`record` in the same transaction as the
change. :func:`install_sealer` hooks the session factory so that, just before each commit,
the transaction's new events are appended to the hash chain under a lock on the single chain
head row and the new head is signed (one signature per transaction, covering the block).
"""

from __future__ import annotations

import hashlib
import json
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
from idgov.audit.canonical import GENESIS_HASH, event_hash, to_jsonable
from idgov.audit.schemas import AuditEventFilter
from idgov.audit.signing import Signer, block_message
from idgov.clock import Clock
from idgov.db.rawwrite import Pipeline, RowWriter, new_id_text
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


@dataclass(frozen=True)
class EventSpec:
    """One event for :func:`record_many`: what happened to which object."""

    action: str
    object_type: str
    object_id: Any
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    # True when before/after/context are already plain JSON data, exactly as to_jsonable
    # would give them (text ids, UTC ISO timestamps): taken as they are.
    plain: bool = False


def record_many(session: Session, events: Iterable[EventSpec], *, actor: Actor,
                clock: Clock, pipeline: Pipeline | None = None) -> int:
    """Append many events to the chain at once, for bulk work (an HR snapshot's joiners).

    Unlike :func:`record`, the events are sealed right away, inside the caller's
    transaction (the chain head stays locked until it commits or rolls back), and written
    through the driver (:class:`idgov.db.rawwrite.RowWriter`), already hashed, with one
    signature over the block. Give the events in chunks of a few thousand to keep memory
    flat. With a ``pipeline`` the rows are stored on its thread, and the chain head,
    locked by the first such call, is kept in memory by the pipeline and written when it
    closes (still inside the transaction, before anything else can seal). Returns how many
    were written.
    """
    signer = session_signer(session)
    if signer is None:
        raise RuntimeError("audit events recorded on a session without a signer")
    occurred_at = clock.now()
    occurred_text = to_jsonable(occurred_at)
    jsonable = _BulkJsonable()
    actor_type, actor_id, actor_name = actor.type, actor.id, actor.name
    key_id = signer.key_id
    # (id, action, object_type, object_id, before, after, context) per event; the chain
    # fields are added once the head is locked.
    rows: list[list[Any]] = []
    for spec in events:
        if spec.plain:
            rows.append([new_id_text(), spec.action, spec.object_type,
                         None if spec.object_id is None else str(spec.object_id),
                         spec.before, spec.after, spec.context])
            continue
        rows.append([
            new_id_text(), spec.action, spec.object_type,
            None if spec.object_id is None else str(spec.object_id),
            jsonable(spec.before) if spec.before is not None else None,
            jsonable(spec.after) if spec.after is not None else None,
            jsonable(spec.context) if spec.context is not None else None,
        ])
    if not rows:
        return 0
    held: tuple[AuditChainHead, int, str] | None = (
        pipeline.state.get(_PIPELINE_HEAD) if pipeline is not None else None)
    if held is None:
        session.flush()
        head = _lock_head(session)
        seq, prev = head.seq, head.hash
    else:  # locked by an earlier call in this transaction, moved on in memory since
        head, seq, prev = held
    for row in rows:
        seq += 1
        # The same record, key order aside (the encoder sorts keys), as _chain_dict builds.
        row.extend((seq, prev, key_id))
        row.append(prev := _hash({
            "seq": seq, "id": row[0], "occurred_at": occurred_text,
            "actor_type": actor_type, "actor_id": actor_id, "actor_name": actor_name,
            "action": row[1], "object_type": row[2], "object_id": row[3],
            "before": row[4], "after": row[5], "context": row[6], "prev_hash": prev,
            "key_id": key_id}))
        row.append(None)
    rows[-1][-1] = signer.sign(block_message(seq, prev))
    if pipeline is None:
        _move_head(session, head, seq, prev)
    else:  # the head row is written once, when the pipeline closes: no wait for it here
        if held is None:
            pipeline.at_close(lambda: _move_head(session, *pipeline.state[_PIPELINE_HEAD]))
        pipeline.state[_PIPELINE_HEAD] = (head, seq, prev)
    RowWriter(session, AuditEvent, _BULK_COLUMNS).write(
        ((*row, occurred_at, actor_type, actor_id, actor_name) for row in rows),
        pipeline=pipeline)
    return len(rows)


_PIPELINE_HEAD = "idgov.audit.head"


def _move_head(session: Session, head: AuditChainHead, seq: int, last_hash: str) -> None:
    session.execute(update(AuditChainHead).where(AuditChainHead.id == 1)
                    .values(seq=seq, hash=last_hash))
    head.seq, head.hash = seq, last_hash


_BULK_COLUMNS = ("id", "action", "object_type", "object_id", "before", "after", "context",
                 "seq", "prev_hash", "key_id", "hash", "signature", "occurred_at",
                 "actor_type", "actor_id", "actor_name")
# canonical.jsonable_hash's encoding, with the encoder built once rather than per event.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _hash(record: dict[str, Any]) -> str:
    """:func:`idgov.audit.canonical.jsonable_hash` of ``record`` (plain JSON data)."""
    return hashlib.sha256(_CANONICAL(record).encode("utf-8")).hexdigest()


_PLAIN = frozenset({str, int, bool, float, type(None)})


class _BulkJsonable:
    """:func:`to_jsonable` of an event's before/after/context, with the same result, made
    cheaper for bulk work: plain values are taken as they are, UUIDs are turned into text
    directly, timestamps and dates (mostly the same few objects over and over; immutable)
    are converted once per object, and dicts and lists nested in them (a joiner's list of
    operations) take the same path."""

    def __init__(self) -> None:
        self.done: dict[int, tuple[Any, Any]] = {}  # id -> (the object, kept alive; text)

    def __call__(self, value: Any) -> Any:
        kind = value.__class__
        if kind is dict:
            return self._dict(value)
        if kind is list:
            return [self._item(item) for item in value]
        return to_jsonable(value)

    def _dict(self, value: dict[Any, Any]) -> dict[str, Any]:
        item_of = self._item
        return {key if key.__class__ is str else str(key): item_of(item)
                for key, item in value.items()}

    def _item(self, item: Any) -> Any:
        kind = item.__class__
        if kind in _PLAIN:
            return item
        if kind is uuid.UUID:
            return str(item)
        if kind is datetime or kind is date:
            known = self.done.get(id(item))
            if known is None:
                known = self.done[id(item)] = (item, to_jsonable(item))
            return known[1]
        if kind is dict:
            return self._dict(item)
        if kind is list:
            return [self._item(v) for v in item]
        return to_jsonable(item)


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
