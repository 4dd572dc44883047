"""Notification queries: the outbox insert, a person's list newest first, claiming due mail."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idgov.db.repository import DEFAULT_LIMIT, MAX_LIMIT, Page
from idgov.errors import FieldError, InvalidInput
from idgov.models.identity import Identity
from idgov.models.notifications import Notification


def recipient_email(session: Session, identity_id: uuid.UUID) -> tuple[bool, str | None]:
    """Whether the identity exists, and its email address now."""
    row = session.execute(select(Identity.email).where(Identity.id == identity_id)).first()
    return (False, None) if row is None else (True, row.email)


def insert_unless_duplicate(session: Session, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert one outbox row; None when its dedupe_key is already taken.

    ``ON CONFLICT DO NOTHING`` rather than check-then-insert: two transactions notifying with
    the same key at once leave one row and no unique-violation error.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (insert(Notification).values(**values)
            .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
            .returning(Notification.id))
    new_id: uuid.UUID | None = session.scalar(stmt)
    return new_id


# The in-app list -------------------------------------------------------------------------------


def list_query(*, recipient_id: uuid.UUID, unread: bool | None) -> Select[Any]:
    stmt = select(Notification).where(Notification.recipient_id == recipient_id)
    if unread is True:
        stmt = stmt.where(Notification.read_at.is_(None))
    elif unread is False:
        stmt = stmt.where(Notification.read_at.is_not(None))
    return stmt


def encode_cursor(created_at: datetime, notification_id: uuid.UUID) -> str:
    raw = json.dumps({"before": [created_at.isoformat(), str(notification_id)]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, id_text = json.loads(base64.urlsafe_b64decode(padded.encode()))["before"]
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None:
            raise ValueError("naive instant")
        return at, uuid.UUID(id_text)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput(
            "the cursor is not one this service issued",
            errors=[FieldError("cursor", "malformed cursor")],
        ) from exc


def page_newest_first(session: Session, stmt: Select[Any], *,
                      limit: int | None, cursor: str | None) -> Page[Notification]:
    """One keyset page ordered by (created_at, id) descending: the newest first.

    The cursor carries the last row's (created_at, id), so rows added while a person pages
    appear on no page twice and shift nothing.
    """
    size = DEFAULT_LIMIT if limit is None else limit
    if size < 1 or size > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}",
                           errors=[FieldError("limit", f"must be between 1 and {MAX_LIMIT}")])
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Notification.created_at < at,
                              and_(Notification.created_at == at, Notification.id < last_id)))
    rows: Sequence[Notification] = list(session.scalars(
        stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1]
        next_cursor = encode_cursor(last.created_at, last.id)
    return Page(items=rows[:size], next_cursor=next_cursor)


def get_for_recipient(session: Session, *, notification_id: uuid.UUID,
                      recipient_id: uuid.UUID) -> Notification | None:
    return session.scalars(select(Notification).where(
        Notification.id == notification_id,
        Notification.recipient_id == recipient_id)).one_or_none()


# Delivery ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedMail:
    """A due outbox row taken by one deliverer; ``attempts`` already counts this attempt."""

    id: uuid.UUID
    email: str
    subject: str
    body: str
    attempts: int
    created_at: datetime


def claim_due(session: Session, *, now: datetime, lease_until: datetime,
              limit: int) -> list[ClaimedMail]:
    """Take up to ``limit`` due pending rows in one statement and hide them until ``lease_until``.

    One ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING``: on PostgreSQL the
    subquery locks with ``FOR UPDATE SKIP LOCKED``, so a concurrent claimer skips these rows;
    on SQLite the statement is the transaction's first and takes the write lock before
    reading, so a second claimer waits and then finds them no longer due. The caller commits
    the claim before sending anything.
    """
    due = (select(Notification.id)
           .where(Notification.email_state == "pending",
                  Notification.email.is_not(None),
                  or_(Notification.next_attempt_at.is_(None),
                      Notification.next_attempt_at <= now))
           .order_by(Notification.next_attempt_at, Notification.created_at, Notification.id)
           .limit(limit)
           .with_for_update(skip_locked=True))
    stmt = (update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()))
            .values(attempts=Notification.attempts + 1, next_attempt_at=lease_until)
            .returning(Notification.id, Notification.email, Notification.subject,
                       Notification.body, Notification.attempts, Notification.created_at)
            .execution_options(synchronize_session=False))
    claimed = [ClaimedMail(id=r.id, email=r.email, subject=r.subject, body=r.body,
                           attempts=r.attempts, created_at=r.created_at)
               for r in session.execute(stmt)]
    return sorted(claimed, key=lambda c: (c.created_at, str(c.id)))


def _set(session: Session, notification_id: uuid.UUID, **values: Any) -> None:
    session.execute(update(Notification)
                    .where(Notification.id == notification_id,
                           Notification.email_state == "pending")
                    .values(**values)
                    .execution_options(synchronize_session=False))


def mark_sent(session: Session, notification_id: uuid.UUID, *, at: datetime) -> None:
    _set(session, notification_id, email_state="sent", sent_at=at, next_attempt_at=None,
         last_error=None)


def reschedule(session: Session, notification_id: uuid.UUID, *, next_attempt_at: datetime,
               error: str) -> None:
    _set(session, notification_id, next_attempt_at=next_attempt_at, last_error=error)


def mark_failed(session: Session, notification_id: uuid.UUID, *, error: str) -> None:
    _set(session, notification_id, email_state="failed", next_attempt_at=None, last_error=error)
