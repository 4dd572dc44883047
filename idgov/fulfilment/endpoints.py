"""/fulfilment/tasks: manual applications' work, for the members of resolution groups."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.auth.caller import Caller
from idgov.fulfilment import service
from idgov.fulfilment.schemas import CompleteIn, FailIn, TaskFilter, TaskPage, TaskRead
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/fulfilment", tags=["fulfilment"])

Reader = Annotated[Caller, Depends(require("fulfilment:work", "fulfilment:read"))]
Worker = Annotated[Caller, Depends(require("fulfilment:work"))]


@router.get("/tasks", response_model=TaskPage, responses=problem_responses())
def list_tasks(session: DbSession, caller: Reader,
               filters: Annotated[TaskFilter, Query()]) -> TaskPage:
    """Open tasks (or those in ``state``): of the caller's resolution groups for a member,
    all of them for administrators and auditors."""
    page = service.list_tasks(session, caller=caller, filters=filters)
    return TaskPage(items=[TaskRead.model_validate(t) for t in page.items],
                    next_cursor=page.next_cursor)


@router.get("/tasks/{task_id}", response_model=TaskRead, responses=problem_responses(404))
def get_task(session: DbSession, caller: Reader, task_id: uuid.UUID) -> TaskRead:
    """One task; a task of another group does not exist for a member."""
    return TaskRead.model_validate(service.get_visible(session, caller=caller, task_id=task_id))


@router.post("/tasks/{task_id}/complete", response_model=TaskRead,
             responses=problem_responses(404, 409))
def complete_task(session: DbSession, caller: Worker, clock: ClockDep, task_id: uuid.UUID,
                  body: CompleteIn) -> TaskRead:
    """Done by hand: the operation succeeds and its request line follows. Members of the
    task's group only (403 for others who see it)."""
    task = service.complete_task(session, task_id=task_id, caller=caller, note=body.note,
                                 clock=clock)
    return TaskRead.model_validate(task)


@router.post("/tasks/{task_id}/fail", response_model=TaskRead,
             responses=problem_responses(404, 409))
def fail_task(session: DbSession, caller: Worker, clock: ClockDep, task_id: uuid.UUID,
              body: FailIn) -> TaskRead:
    """Could not be done: the operation fails with the note (category data_error unless
    given) and lands in the group's failed queue. Members of the task's group only."""
    task = service.fail_task(session, task_id=task_id, caller=caller, note=body.note,
                             category=body.category, clock=clock)
    return TaskRead.model_validate(task)
