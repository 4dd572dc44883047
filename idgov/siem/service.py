"""SIEM services: the sealed trail as event documents (pull), and syslog sink administration.

Services flush and audit, never commit. Delivery to the sinks is in :mod:`idgov.siem.tasks`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from idgov.audit.canonical import to_jsonable
from idgov.audit.repository import decode_seq_cursor, encode_seq_cursor
from idgov.audit.service import apply_changes, record, snapshot
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, FieldError, InvalidInput
from idgov.models.siem import SiemSink
from idgov.siem import repository
from idgov.siem.privileged import EventFacts, mark, needs_roles, referenced_entitlements
from idgov.siem.schemas import SiemSinkCreate, SiemSinkUpdate
from idgov.types import Actor

# --- the trail as documents ------------------------------------------------------------------


def event_document(row: Row[Any] | Any, *, privileged: bool) -> dict[str, Any]:
    """What a SIEM gets of one sealed event: its place in the chain, who did what to which
    object, before/after/context, the hashes and signature to verify it, and the mark."""
    return {
        "seq": row.seq,
        "id": str(row.id),
        "occurred_at": to_jsonable(row.occurred_at),
        "actor": {"type": row.actor_type, "id": row.actor_id, "name": row.actor_name},
        "action": row.action,
        "object": {"type": row.object_type, "id": row.object_id},
        "before": row.before,
        "after": row.after,
        "context": row.context,
        "privileged": privileged,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "key_id": row.key_id,
        "signature": row.signature,
    }


def documents_of(session: Session, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """The documents of sealed event rows, each marked by :mod:`idgov.siem.privileged`."""
    facts = [EventFacts(action=r.action, occurred_at=r.occurred_at, after=r.after)
             for r in rows]
    catalog = repository.catalog_for(session, entitlement_ids=referenced_entitlements(facts),
                                     with_roles=needs_roles(facts))
    return [event_document(r, privileged=m) for r, m in zip(rows, mark(facts, catalog),
                                                            strict=True)]


@dataclass(frozen=True)
class EventBatch:
    """Sealed events after a seq: their documents, the seq to continue after, and whether
    more events were already waiting."""

    documents: list[dict[str, Any]]
    last_seq: int
    has_more: bool

    @property
    def next_cursor(self) -> str:
        return encode_seq_cursor(self.last_seq)


def read_batch(session: Session, *, after_seq: int, limit: int) -> EventBatch:
    """At most ``limit`` sealed events with ``seq > after_seq``, in seq order."""
    rows = repository.sealed_after(session, after_seq=after_seq, limit=limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1].seq if rows else after_seq
    return EventBatch(documents=documents_of(session, rows), last_seq=last, has_more=has_more)


def pull(session: Session, *, cursor: str | None, limit: int) -> EventBatch:
    """The sealed events after ``cursor`` (from the start without one), for the pull
    endpoint. A cursor this service cannot have issued (malformed, or past the end of the
    trail: a restored or different database) is InvalidInput, never an empty answer that
    would hide the gap."""
    after = decode_seq_cursor(cursor) if cursor else 0
    head = repository.head_seq(session)
    if after > head:
        raise InvalidInput("the cursor is past the end of the audit trail",
                           errors=[FieldError("cursor", f"points after seq {head}, the last "
                                              "sealed event")])
    return read_batch(session, after_seq=after, limit=limit)


# --- syslog sinks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SinkView:
    """A sink and how many sealed events it has yet to receive."""

    sink: SiemSink
    behind: int


def _view(session: Session, sink: SiemSink, head: int | None = None) -> SinkView:
    head = repository.head_seq(session) if head is None else head
    return SinkView(sink, max(0, head - sink.cursor_seq))


def _check_name(session: Session, name: str, exclude: uuid.UUID | None) -> None:
    if repository.name_taken(session, name, exclude=exclude):
        raise Conflict(f"a SIEM sink named {name!r} already exists", field="name")


def _check_cursor(session: Session, cursor_seq: int) -> None:
    head = repository.head_seq(session)
    if cursor_seq > head:
        raise InvalidInput("cursor_seq is past the end of the audit trail",
                           errors=[FieldError("cursor_seq", f"at most {head}, the last "
                                              "sealed event")])


def _check_tls(*, tls: bool, ca_file: str | None) -> None:
    if ca_file is not None and not tls:
        raise InvalidInput("ca_file is only used with tls",
                           errors=[FieldError("ca_file", "only used with tls: set tls "
                                              "to true or ca_file to null")])


def list_sinks(session: Session, *, limit: int | None, cursor: str | None) -> Page[SinkView]:
    """Every syslog sink with its delivery state."""
    page = paginate(session, repository.list_query(), SiemSink, limit=limit, cursor=cursor)
    head = repository.head_seq(session)
    return Page(items=[_view(session, s, head) for s in page.items],
                next_cursor=page.next_cursor)


def get_sink(session: Session, *, sink_id: uuid.UUID) -> SinkView:
    """One sink, or NotFound."""
    return _view(session, get_or_404(session, SiemSink, sink_id, what="SIEM sink"))


def create_sink(session: Session, *, sink_in: SiemSinkCreate, actor: Actor,
                clock: Clock) -> SinkView:
    """Add a syslog receiver; the job sends it the sealed events after ``cursor_seq``."""
    _check_name(session, sink_in.name, None)
    _check_cursor(session, sink_in.cursor_seq)
    _check_tls(tls=sink_in.tls, ca_file=sink_in.ca_file)
    sink = SiemSink(**sink_in.model_dump())
    sink.created_at = sink.updated_at = clock.now()
    session.add(sink)
    session.flush()
    record(session, actor=actor, action="siem_sink.create", object_type="siem_sink",
           object_id=sink.id, clock=clock, after=snapshot(sink))
    return _view(session, sink)


_NOT_NULL = ("name", "host", "port", "tls", "app_name", "enabled", "cursor_seq")


def update_sink(session: Session, *, sink_id: uuid.UUID, sink_in: SiemSinkUpdate,
                actor: Actor, clock: Clock) -> SinkView:
    """Change the given fields. Moving ``cursor_seq`` back sends events again, forward
    skips them: both are audited with the old and new value."""
    sink = get_or_404(session, SiemSink, sink_id, what="SIEM sink")
    changes = sink_in.model_dump(exclude_unset=True)
    nulls = [FieldError(k, "cannot be null") for k in _NOT_NULL
             if k in changes and changes[k] is None]
    if nulls:
        raise InvalidInput("these fields cannot be null", errors=nulls)
    if changes.get("name"):
        _check_name(session, changes["name"], sink_id)
    if "cursor_seq" in changes:
        _check_cursor(session, changes["cursor_seq"])
    _check_tls(tls=changes.get("tls", sink.tls), ca_file=changes.get("ca_file", sink.ca_file))
    apply_changes(session, sink, changes, action="siem_sink.update", object_type="siem_sink",
                  actor=actor, clock=clock)
    return _view(session, sink)


def delete_sink(session: Session, *, sink_id: uuid.UUID, actor: Actor, clock: Clock) -> None:
    """Remove a sink; nothing more is sent to it."""
    sink = get_or_404(session, SiemSink, sink_id, what="SIEM sink")
    before = snapshot(sink)
    session.delete(sink)
    session.flush()
    record(session, actor=actor, action="siem_sink.delete", object_type="siem_sink",
           object_id=sink_id, clock=clock, before=before)
