"""Administrator pages of operations (/ui/admin): the applications with their connector's
health (circuit breaker, queue counts, a live connection check on demand), and the
failed-operations queue with retry and cancel.

Same services and capabilities as the API: reading needs ``provisioning:read``
(``/provisioning/failed``, ``/applications/{id}/health``: administrators and auditors),
retry and cancel ``provisioning:write`` (administrators); anyone else gets the 403 page.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import func, select
from starlette.responses import RedirectResponse, Response

from idgov.applications import service as applications
from idgov.applications.schemas import ApplicationFilter
from idgov.auth.caller import Caller
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import health
from idgov.provisioning import repository as ops_repository
from idgov.provisioning import service as provisioning
from idgov.provisioning.schemas import FailedFilter
from idgov.ui import lookup
from idgov.ui.deps import CheckedForm, page_require, page_router
from idgov.ui.lookup import WorkSession
from idgov.ui.registry import Counter, NavItem, register_counter, register_nav
from idgov.ui.render import render
from idgov.ui.repository import count
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, Ctx, DbSession

router = page_router(prefix="/ui/admin")
register_nav(NavItem(key="admin-applications", label="Applications",
                     href="/ui/admin/applications", capabilities=("provisioning:read",),
                     order=600))
register_nav(NavItem(key="admin-failed", label="Failed operations", href="/ui/admin/failed",
                     capabilities=("provisioning:read",), order=610))
register_counter(Counter(
    key="failed-operations", label="Failed operations", href="/ui/admin/failed",
    capabilities=("provisioning:read",), order=600,
    count=lambda session, caller, clock: count(session, ops_repository.failed_query(
        FailedFilter()))))

Reader = Annotated[Caller, Depends(page_require("provisioning:read"))]
Writer = Annotated[Caller, Depends(page_require("provisioning:write"))]
_COUNTED = ("pending", "running", "retry_scheduled", "failed")


@router.get("/applications")
def application_list(request: Request, session: DbSession, caller: Reader) -> Response:
    """Every application with its breaker and how many of its operations wait or failed."""
    apps = applications.list_applications(session, filters=ApplicationFilter(), limit=500,
                                          cursor=None).items
    breakers = health.breakers(session, [a.id for a in apps])
    waiting: dict[uuid.UUID, int] = {}
    failed_n: dict[uuid.UUID, int] = {}
    for app_id, state, n in session.execute(
            select(ProvisioningOperation.application_id, ProvisioningOperation.state,
                   func.count())
            .where(ProvisioningOperation.state.in_(_COUNTED))
            .group_by(ProvisioningOperation.application_id, ProvisioningOperation.state)):
        into = failed_n if state == "failed" else waiting
        into[app_id] = into.get(app_id, 0) + n
    rows = [{"app": a, "breaker": breakers.get(a.id), "waiting": waiting.get(a.id, 0),
             "failed": failed_n.get(a.id, 0)} for a in apps]
    return render(request, "admin/applications.html", title="Applications", rows=rows)


@router.get("/applications/{application_id}/health")
def application_health(request: Request, session: DbSession, caller: Reader,
                       clock: ClockDep, ctx: Ctx, application_id: uuid.UUID) -> Response:
    """The breaker and a live connection test of a fresh connector (as the API's health)."""
    app = applications.get_application(session, application_id=application_id)
    found = health.check(session, application_id=application_id, settings=ctx.settings,
                         clock=clock)
    return render(request, "admin/health.html", title=f"Health of {app.name}", app=app,
                  health=found)


@router.get("/failed")
def failed(request: Request, session: DbSession, caller: Reader) -> Response:
    """The failed-operations queue, oldest first."""
    ops = provisioning.list_failed(session, filters=FailedFilter(limit=200)).items
    return render(request, "admin/failed.html", title="Failed operations", ops=ops,
                  people=lookup.identity_names(session, [o.identity_id for o in ops]),
                  apps=lookup.application_names(session, [o.application_id for o in ops]),
                  groups=lookup.group_names(session, [o.resolution_group_id for o in ops]),
                  may_write=caller.can("provisioning:write"))


@router.post("/operations/{operation_id}/retry")
def retry(request: Request, session: WorkSession, caller: Writer, clock: ClockDep,
          operation_id: uuid.UUID, form: CheckedForm) -> Response:
    """Put a failed operation back in the queue, due now."""
    provisioning.retry_operation(session, operation_id=operation_id, actor=caller.actor,
                                 clock=clock)
    flash(request, "Retry scheduled.", "success")
    return RedirectResponse("/ui/admin/failed", status_code=303)


@router.post("/operations/{operation_id}/cancel")
def cancel(request: Request, session: WorkSession, caller: Writer, clock: ClockDep,
           operation_id: uuid.UUID, form: CheckedForm) -> Response:
    """Give up a failed operation."""
    provisioning.cancel_operation(session, operation_id=operation_id, actor=caller.actor,
                                  clock=clock)
    flash(request, "Operation cancelled.", "success")
    return RedirectResponse("/ui/admin/failed", status_code=303)
