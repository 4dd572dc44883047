"""/me/notifications: a person's in-app notifications and the read mark."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.auth.caller import Caller
from idgov.errors import Forbidden
from idgov.notifications import service
from idgov.notifications.schemas import NotificationFilter, NotificationPage, NotificationRead
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/me/notifications", tags=["notifications"])

Reader = Annotated[Caller, Depends(require("notifications:read_own"))]


def _person(caller: Caller) -> uuid.UUID:
    if caller.identity_id is None:
        raise Forbidden("only a person signed in has notifications")
    return caller.identity_id


@router.get("", response_model=NotificationPage, responses=problem_responses())
def list_my_notifications(session: DbSession, caller: Reader,
                          filters: Annotated[NotificationFilter, Query()]) -> NotificationPage:
    """The caller's own notifications, newest first; ``unread=true`` for those not read yet."""
    page = service.list_for(session, recipient_id=_person(caller), unread=filters.unread,
                            limit=filters.limit, cursor=filters.cursor)
    return NotificationPage(items=[NotificationRead.model_validate(n) for n in page.items],
                            next_cursor=page.next_cursor)


@router.post("/{notification_id}/read", response_model=NotificationRead,
             responses=problem_responses(404))
def mark_notification_read(session: DbSession, caller: Reader, clock: ClockDep,
                           notification_id: uuid.UUID) -> NotificationRead:
    """Mark one of the caller's notifications read (again: no change). Others' are 404."""
    notification = service.mark_read(session, notification_id=notification_id,
                                      recipient_id=_person(caller), actor=caller.actor,
                                      clock=clock)
    return NotificationRead.model_validate(notification)
