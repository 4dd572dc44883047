"""Requester pages: my requests (each line's state and what it waits on), one request,
and the in-app notifications. The same services and row rules as ``GET /requests`` and
``/me/notifications``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from idgov.auth.caller import Caller
from idgov.errors import Forbidden
from idgov.notifications import service as notifications
from idgov.requests import service as requests
from idgov.requests.schemas import LineRead, RequestFilter, RequestRead
from idgov.ui import registry
from idgov.ui.deps import CheckedForm, PageSession, page_require, page_router
from idgov.ui.render import render
from idgov.ui.repository import names_of
from idgov.ui.session import flash
from idgov.web.deps import ClockDep

router = page_router()

Reader = Annotated[Caller, Depends(page_require("requests:read", "requests:read_own"))]
NotificationReader = Annotated[Caller, Depends(page_require("notifications:read_own"))]
Cursor = Annotated[str | None, Query(max_length=200)]


def waits_on(line: LineRead, names: dict[uuid.UUID, str]) -> str:
    """What a line waits on, in words: the approvers of its waiting step, provisioning..."""
    waiting = [s for s in line.steps if s.state == "waiting"]
    if waiting:
        step = waiting[0]
        who = ", ".join(names.get(a, "someone") for a in step.approvers) or "nobody yet"
        return f"{step.label}: {who}"
    if line.state in ("approved", "provisioning"):
        return "provisioning in the target system"
    return line.state_reason or ""


def _views(session: Session, rows: list[Any]) -> tuple[list[RequestRead], dict[uuid.UUID, str]]:
    views = [requests.request_view(session, r) for r in rows]
    people = {v.requester_id for v in views} | {v.beneficiary_id for v in views}
    people |= {a for v in views for ln in v.lines for s in ln.steps for a in s.approvers}
    people |= {a.approver_id for v in views for ln in v.lines for s in ln.steps
               for a in s.approvals}
    return views, names_of(session, people)


@router.get("/requests")
def my_requests(request: Request, session: PageSession, caller: Reader,
                cursor: Cursor = None) -> Response:
    """The caller's requests (as requester or beneficiary), newest page first."""
    if caller.identity_id is None:
        raise Forbidden("only a person has requests of their own")
    filters = RequestFilter(limit=25, cursor=cursor)
    if caller.can("requests:read"):  # a reader sees everyone's: keep to their own here
        filters = RequestFilter(limit=25, cursor=cursor, requester_id=caller.identity_id)
    page = requests.list_requests(session, caller=caller, filters=filters)
    views, names = _views(session, list(page.items))
    next_url = f"/ui/requests?cursor={page.next_cursor}" if page.next_cursor else None
    return render(request, "my_requests.html", title="My requests", requests=views,
                  names=names, waits_on=waits_on, next_url=next_url)


@router.get("/requests/{request_id:uuid}")
def request_detail(request: Request, session: PageSession, caller: Reader, clock: ClockDep,
                   request_id: uuid.UUID) -> Response:
    """One request: lines, policy decisions, steps and decisions (visible as the API)."""
    row = requests.get_visible(session, caller=caller, request_id=request_id, clock=clock)
    views, names = _views(session, [row])
    return render(request, "request_detail.html", title=views[0].number, req=views[0],
                  names=names, waits_on=waits_on)


@router.get("/notifications")
def my_notifications(request: Request, session: PageSession, caller: NotificationReader,
                     unread: bool | None = None, cursor: Cursor = None) -> Response:
    """The caller's notifications, newest first."""
    if caller.identity_id is None:
        raise Forbidden("only a person signed in has notifications")
    page = notifications.list_for(session, recipient_id=caller.identity_id, unread=unread,
                                  limit=25, cursor=cursor)
    next_url = f"/ui/notifications?cursor={page.next_cursor}" if page.next_cursor else None
    return render(request, "notifications.html", title="Notifications", items=page.items,
                  next_url=next_url)


@router.post("/notifications/{notification_id}/read")
def read_notification(request: Request, session: PageSession, caller: NotificationReader,
                      clock: ClockDep, form: CheckedForm, notification_id: uuid.UUID
                      ) -> Response:
    """Mark one of the caller's notifications read."""
    if caller.identity_id is None:
        raise Forbidden("only a person signed in has notifications")
    notifications.mark_read(session, notification_id=notification_id,
                            recipient_id=caller.identity_id, actor=caller.actor, clock=clock)
    flash(request, "Marked read.")
    return RedirectResponse("/ui/notifications", status_code=303)


registry.register_nav(registry.NavItem(key="my-requests", label="My requests",
                                       href="/ui/requests", capabilities=("requests:read_own",),
                                       order=110, person_only=True))
registry.register_nav(registry.NavItem(key="notifications", label="Notifications",
                                       href="/ui/notifications",
                                       capabilities=("notifications:read_own",), order=120,
                                       person_only=True))
