"""Notification services: add a message to a person's outbox, list it, mark it read.

Other modules call :func:`notify` inside their own transaction, so a message exists exactly
when the change it tells about was committed. Mailing happens later
(:func:`idgov.notifications.tasks.deliver_pending`).
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from idgov.audit.service import record
from idgov.clock import Clock
from idgov.db.repository import Page
from idgov.errors import FieldError, InvalidInput, NotFound
from idgov.models.notifications import Notification
from idgov.notifications import repository
from idgov.types import Actor

SUBJECT_MAX = 400
DEDUPE_KEY_MAX = 200


def _one_line(text: str, limit: int) -> str:
    """A subject on one line (a line break in a mail header would be refused or abused)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def notify(
    session: Session,
    *,
    recipient_id: uuid.UUID,
    kind: str,
    subject: str,
    body: str,
    object_type: str | None = None,
    object_id: str | None = None,
    dedupe_key: str | None = None,
    clock: Clock,
) -> Notification | None:
    """Add one message for ``recipient_id`` to the outbox and their in-app list.

    The address is the recipient's email now; a person without one gets the message in-app
    only (``email_state`` 'skipped'). With a ``dedupe_key`` already used (by any earlier
    message, read or not) nothing is added and None is returned, so a sweep may run often.
    Flushes, never commits; no audit event (a message is not a change of access). Never put
    secrets in ``body``: it is stored and mailed as it is.
    """
    if dedupe_key is not None and len(dedupe_key) > DEDUPE_KEY_MAX:
        raise InvalidInput("the dedupe key is too long",
                           errors=[FieldError("dedupe_key",
                                              f"at most {DEDUPE_KEY_MAX} characters")])
    exists, email = repository.recipient_email(session, recipient_id)
    if not exists:
        raise InvalidInput("the recipient of a notification does not exist",
                           errors=[FieldError("recipient_id", f"no identity {recipient_id}")])
    now = clock.now()
    values = {
        "id": uuid.uuid4(),
        "recipient_id": recipient_id,
        "email": email,
        "kind": kind,
        "subject": _one_line(subject, SUBJECT_MAX),
        "body": body,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "dedupe_key": dedupe_key,
        "created_at": now,
        "email_state": "pending" if email else "skipped",
        "attempts": 0,
        "next_attempt_at": now if email else None,
    }
    new_id = repository.insert_unless_duplicate(session, values)
    if new_id is None:
        return None
    return session.get(Notification, new_id)


def list_for(session: Session, *, recipient_id: uuid.UUID, unread: bool | None = None,
             limit: int | None = None, cursor: str | None = None) -> Page[Notification]:
    """A person's notifications, newest first (created_at, then id, descending), one page.

    ``unread`` True keeps those not read yet, False those read, None all.
    """
    stmt = repository.list_query(recipient_id=recipient_id, unread=unread)
    return repository.page_newest_first(session, stmt, limit=limit, cursor=cursor)


def mark_read(session: Session, *, notification_id: uuid.UUID, recipient_id: uuid.UUID,
              actor: Actor, clock: Clock) -> Notification:
    """Mark one of the recipient's notifications read; idempotent.

    Another person's notification is NotFound, as if it did not exist. The first read sets
    ``read_at`` and is audited ("notification.read"); reading it again changes nothing and
    records nothing.
    """
    notification = repository.get_for_recipient(session, notification_id=notification_id,
                                                recipient_id=recipient_id)
    if notification is None:
        raise NotFound(f"notification {notification_id} does not exist")
    if notification.read_at is not None:
        return notification
    before = {"recipient_id": notification.recipient_id, "kind": notification.kind,
              "read_at": None}
    notification.read_at = clock.now()
    session.flush()
    record(session, actor=actor, action="notification.read", object_type="notification",
           object_id=notification.id, clock=clock, before=before,
           after={**before, "read_at": notification.read_at})
    return notification
