"""Background work of the approvals module: escalating overdue steps."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.approvals import repository
from idgov.approvals.service import describe_line, first_eligible_manager, notify_step
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.models.requests import AccessRequest, ApprovalStep, ApprovalStepApprover, RequestLine
from idgov.types import Actor


def escalate_overdue(session: Session, *, clock: Clock, actor: Actor,
                     extension_hours: int) -> int:
    """Escalate every waiting step whose deadline has passed; return how many.

    The nearest eligible manager of each current approver (never the line's requester or
    beneficiary, nor someone already an approver) is added as an approver (origin
    ``escalation``) and told; the step's escalation level goes up by one and its deadline
    moves ``extension_hours`` on, so a step is escalated again only if it stays overdue.
    """
    now = clock.now()
    overdue = list(session.scalars(
        select(ApprovalStep)
        .where(ApprovalStep.state == "waiting", ApprovalStep.due_at <= now)
        .order_by(ApprovalStep.due_at, ApprovalStep.id)
        .with_for_update(skip_locked=True)))
    for step in overdue:
        line = session.get(RequestLine, step.line_id)
        assert line is not None
        request = session.get(AccessRequest, line.request_id)
        assert request is not None
        current = [a.identity_id for a in repository.approvers_of(session, step.id)]
        excluded = {request.requester_id, line.beneficiary_id, *current}
        added: list[uuid.UUID] = []
        for approver_id in current:
            manager = first_eligible_manager(session, approver_id, excluded)
            if manager is not None:
                excluded.add(manager)
                added.append(manager)
                session.add(ApprovalStepApprover(step_id=step.id, identity_id=manager,
                                                 origin="escalation", added_at=now))
        before = snapshot(step)
        step.escalation_level += 1
        step.due_at = now + timedelta(hours=extension_hours)
        step.updated_at = now
        session.flush()
        record(session, actor=actor, action="approval_step.escalate",
               object_type="approval_step", object_id=step.id, clock=clock, before=before,
               after=snapshot(step),
               context={"line": line.number, "added_approvers": [str(a) for a in added]})
        what = describe_line(session, line)
        for manager in added:
            notify_step(session, recipient_id=manager, kind="approval.escalated",
                    subject=f"Overdue approval escalated to you: {line.number}",
                    body=(f"{step.label} on {what} is overdue and was escalated to you. "
                          f"Due now: {step.due_at.isoformat()}."),
                    object_id=step.id,
                    dedupe_key=f"approval.escalated:{step.id}:{step.escalation_level}:{manager}",
                    clock=clock)
    return len(overdue)
