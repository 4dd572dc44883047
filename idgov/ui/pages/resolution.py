"""Pages of a resolution group's members (/ui/resolution): the manual fulfilment tasks of
their groups, to complete or fail, and the failed operations routed to their groups.

Same services and capabilities as ``/fulfilment/tasks`` and ``/provisioning/failed``: a
member sees their groups' tasks and failures, administrators and auditors see all; only a
member of the task's group completes or fails it (403 page otherwise).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.errors import InvalidInput
from idgov.fulfilment import repository as fulfilment_repository
from idgov.fulfilment import service as fulfilment
from idgov.fulfilment.schemas import FailIn, TaskFilter
from idgov.models.provisioning import FulfilmentTask
from idgov.provisioning import service as provisioning
from idgov.provisioning.schemas import FailedFilter
from idgov.ui import lookup
from idgov.ui.deps import CheckedForm, page_require, page_router
from idgov.ui.lookup import WorkSession
from idgov.ui.registry import Counter, NavItem, register_counter, register_nav
from idgov.ui.render import field_errors, render
from idgov.ui.repository import count
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, DbSession

router = page_router(prefix="/ui/resolution")
register_nav(NavItem(key="resolution", label="Resolution", href="/ui/resolution",
                     capabilities=("fulfilment:work", "fulfilment:read"), order=400))

Reader = Annotated[Caller, Depends(page_require("fulfilment:work", "fulfilment:read"))]
Worker = Annotated[Caller, Depends(page_require("fulfilment:work"))]


def _page(request: Request, session: DbSession, caller: Caller, *,
          errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    tasks = fulfilment.list_tasks(session, caller=caller,
                                  filters=TaskFilter(limit=200)).items
    group_ids = None
    if not caller.can("provisioning:read"):
        group_ids = (provisioning.groups_of(session, caller.identity_id)
                     if caller.identity_id is not None else set())
    failed = provisioning.list_failed(session, filters=FailedFilter(limit=200),
                                      group_ids=group_ids).items
    people = lookup.identity_names(session, [*(t.identity_id for t in tasks),
                                             *(o.identity_id for o in failed)])
    apps = lookup.application_names(session, [*(t.application_id for t in tasks),
                                              *(o.application_id for o in failed)])
    groups = lookup.group_names(session, [*(t.group_id for t in tasks),
                                          *(o.resolution_group_id for o in failed)])
    return render(request, "ops/resolution.html", status_code=status_code,
                  title="Resolution group work", tasks=tasks, failed=failed, people=people,
                  apps=apps, groups=groups, errors=errors or {},
                  may_work=caller.can("fulfilment:work") and caller.identity_id is not None)


@router.get("")
def resolution(request: Request, session: DbSession, caller: Reader) -> Response:
    """Open manual tasks and failed operations of the caller's resolution groups."""
    return _page(request, session, caller)


@router.post("/tasks/{task_id}/complete")
def complete(request: Request, session: WorkSession, caller: Worker, clock: ClockDep,
             task_id: uuid.UUID, form: CheckedForm) -> Response:
    """Done by hand: the operation succeeds."""
    task = fulfilment.complete_task(session, task_id=task_id, caller=caller,
                                    note=lookup.text(form, "note") or None, clock=clock)
    flash(request, f"Completed: {task.summary}", "success")
    return RedirectResponse("/ui/resolution", status_code=303)


@router.post("/tasks/{task_id}/fail")
def fail(request: Request, session: WorkSession, caller: Worker, clock: ClockDep,
         task_id: uuid.UUID, form: CheckedForm) -> Response:
    """Could not be done: the operation fails with the note (mandatory)."""
    try:
        body = lookup.parsed(FailIn, {"note": lookup.text(form, "note"),
                                      "category": lookup.text(form, "category") or
                                      "data_error"})
        task = fulfilment.fail_task(session, task_id=task_id, caller=caller, note=body.note,
                                    category=body.category, clock=clock)
    except InvalidInput as exc:
        session.rollback()
        errors = {f"{task_id}.{k}": v for k, v in field_errors(exc).items()}
        return _page(request, session, caller, errors=errors, status_code=422)
    flash(request, f"Failed: {task.summary}", "success")
    return RedirectResponse("/ui/resolution", status_code=303)


def overdue_tasks(session: Session, caller: Caller, clock: Clock) -> int:
    """Open tasks past their due date, as the resolution page lists them (row rule)."""
    member = None if caller.can("fulfilment:read") else caller.identity_id
    if member is None and not caller.can("fulfilment:read"):
        return 0
    stmt = fulfilment_repository.list_query(TaskFilter(), member_id=member)
    return count(session, stmt.where(FulfilmentTask.due_at < clock.now()))


register_counter(Counter(key="overdue-tasks", label="Overdue tasks", href="/ui/resolution",
                         capabilities=("fulfilment:work", "fulfilment:read"),
                         count=overdue_tasks, order=400))
