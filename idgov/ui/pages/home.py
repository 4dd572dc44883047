"""The dashboard: for each persona the numbers that matter, each linking to its list.

Counters come from ``idgov.ui.registry`` (certification adds open reviews, the resolution
and administrator pages add overdue tasks and failed operations). The core's own, here:
waiting approvals, open requests, unread notifications.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from idgov.approvals.service import waiting_steps_for
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.models.requests import AccessRequest
from idgov.notifications import repository as notifications_repository
from idgov.requests import repository as requests_repository
from idgov.requests.schemas import RequestFilter
from idgov.requests.states import OPEN_REQUEST_STATES
from idgov.ui import registry
from idgov.ui.deps import PageCaller, PageSession, page_router
from idgov.ui.registry import Counter
from idgov.ui.render import render
from idgov.ui.repository import count
from idgov.web.deps import ClockDep

router = page_router()


@router.get("/", name="ui_dashboard")
def dashboard(request: Request, session: PageSession, caller: PageCaller,
              clock: ClockDep) -> Response:
    """The signed-in caller's counters."""
    tiles = [(c, c.count(session, caller, clock)) for c in registry.counters_for(caller)]
    return render(request, "dashboard.html", title="Dashboard", tiles=tiles)


def _waiting_approvals(session: Session, caller: Caller, clock: Clock) -> int:
    if caller.identity_id is None:
        return 0
    return count(session, waiting_steps_for(session, identity_id=caller.identity_id,
                                            at=clock.now()))


def _open_requests(session: Session, caller: Caller, _clock: Clock) -> int:
    if caller.identity_id is None:
        return 0
    stmt = (requests_repository.list_query(RequestFilter())
            .where(requests_repository.own(caller.identity_id),
                   AccessRequest.state.in_(sorted(OPEN_REQUEST_STATES))))
    return count(session, stmt)


def _unread(session: Session, caller: Caller, _clock: Clock) -> int:
    if caller.identity_id is None:
        return 0
    return count(session, notifications_repository.list_query(recipient_id=caller.identity_id,
                                                               unread=True))


registry.register_counter(Counter(
    key="waiting-approvals", label="Approvals waiting for you", href="/ui/approvals",
    capabilities=("approvals:decide",), count=_waiting_approvals, order=100, person_only=True))
registry.register_counter(Counter(
    key="open-requests", label="Your open requests", href="/ui/requests",
    capabilities=("requests:create",), count=_open_requests, order=110, tone="info",
    person_only=True))
registry.register_counter(Counter(
    key="unread-notifications", label="Unread notifications", href="/ui/notifications",
    capabilities=("notifications:read_own",), count=_unread, order=120, tone="info",
    person_only=True))
