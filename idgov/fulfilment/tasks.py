"""Background work of manual fulfilment: escalating overdue tasks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.fulfilment import repository
from idgov.models.application import Application
from idgov.notifications.service import notify
from idgov.types import Actor

EXTENSION_HOURS = 24


def escalate_overdue_tasks(session: Session, *, clock: Clock, actor: Actor,
                           extension_hours: int = EXTENSION_HOURS) -> int:
    """Escalate every open task past its deadline; return how many.

    The owner of the task's resolution group and the owner of its application are told
    (once each per escalation); the task's escalation level goes up by one and its deadline
    moves ``extension_hours`` on, so it escalates again only if it stays overdue.
    """
    now = clock.now()
    overdue = repository.overdue(session, now)
    for task in overdue:
        before = snapshot(task)
        task.escalation_level += 1
        task.due_at = now + timedelta(hours=extension_hours)
        task.updated_at = now
        session.flush()
        application = session.get(Application, task.application_id)
        recipients = [r for r in (repository.group_owner(session, task.group_id),
                                  application.owner_id if application else None)
                      if r is not None]
        recipients = list(dict.fromkeys(recipients))
        record(session, actor=actor, action="fulfilment_task.escalate",
               object_type="fulfilment_task", object_id=task.id, clock=clock, before=before,
               after=snapshot(task), context={"told": [str(r) for r in recipients]})
        for person in recipients:
            notify(session, recipient_id=person, kind="fulfilment.escalated",
                   subject=f"Overdue manual task escalated to you: {task.summary}",
                   body=(f"{task.summary}\nThis task is overdue (escalation "
                         f"{task.escalation_level}); due now: {task.due_at.isoformat()}."),
                   object_type="fulfilment_task", object_id=str(task.id),
                   dedupe_key=f"fulfilment.escalated:{task.id}:{task.escalation_level}:{person}",
                   clock=clock)
    return len(overdue)
