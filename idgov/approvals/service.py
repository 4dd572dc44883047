"""Approval services: open a line's approval stages, record decisions, delegations, authority.

A line that needs people's approval gets one :class:`ApprovalStep` per stage. Stages run in
order; when a stage starts its approvers are resolved from the data at that moment (the
beneficiary's manager, the item's owner, a group's active members, the control owner, or the
dual-control group), so a reorganisation between stages is taken into account. The
requester and the beneficiary of a line never approve it, not even through a delegation.

This module never imports :mod:`idgov.requests`: the requests module orchestrates (it moves
the line and the request through their states after :func:`record_decision`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from idgov.approvals import repository
from idgov.approvals.delegations import authority_of
from idgov.approvals.schemas import (
    ApprovalFilter,
    ApprovalItem,
    ApprovalOut,
    ApproverOut,
    LineOut,
    RequestOut,
    StepOut,
)
from idgov.audit.service import record, snapshot
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from idgov.identities.repository import manager_chain
from idgov.models.identity import Identity
from idgov.models.requests import (
    AccessRequest,
    Approval,
    ApprovalStep,
    ApprovalStepApprover,
    RequestLine,
    RequestType,
)
from idgov.notifications.service import notify
from idgov.policy.decision import ApprovalNeed, risk_at_most
from idgov.types import Actor

# A request in one of these states no longer takes decisions.
_CLOSED_REQUEST_STATES = frozenset({
    "draft", "rejected", "cancelled", "fulfilled", "partially_fulfilled", "failed",
})
_KIND_LABELS = {
    "manager": "Manager approval",
    "owner": "Owner approval",
    "group": "Group approval",
    "control_owner": "Mitigating control owner approval",
    "dual_control": "Dual control",
}


# Notifications ------------------------------------------------------------------------------


def notify_step(session: Session, *, recipient_id: uuid.UUID, kind: str, subject: str, body: str,
            object_id: uuid.UUID, dedupe_key: str, clock: Clock) -> None:
    notify(session, recipient_id=recipient_id, kind=kind, subject=subject, body=body,
           object_type="approval_step", object_id=str(object_id), dedupe_key=dedupe_key,
           clock=clock)


def describe_line(session: Session, line: RequestLine) -> str:
    name = repository.item_name(session, line) or "an item"
    beneficiary = session.get(Identity, line.beneficiary_id)
    who = beneficiary.display_name if beneficiary is not None else str(line.beneficiary_id)
    verb = "grant" if line.action == "grant" else "revoke"
    return f"{line.number}: {verb} {name} for {who} (risk {line.risk})"


def notify_waiting(session: Session, *, step: ApprovalStep, line: RequestLine,
                   approver_ids: Sequence[uuid.UUID], clock: Clock) -> None:
    """Tell each of ``approver_ids`` that ``step`` waits for their decision."""
    what = describe_line(session, line)
    due = step.due_at.isoformat() if step.due_at else "no deadline"
    for approver_id in approver_ids:
        notify_step(session, recipient_id=approver_id, kind="approval.waiting",
                subject=f"Approval needed: {line.number}",
                body=f"{step.label} is waiting for your decision on {what}. Due: {due}.",
                object_id=step.id, dedupe_key=f"approval.waiting:{step.id}:{approver_id}",
                clock=clock)


# Resolving approvers ------------------------------------------------------------------------


def first_eligible_manager(session: Session, person_id: uuid.UUID,
                            excluded: set[uuid.UUID]) -> uuid.UUID | None:
    """The nearest active manager above ``person_id`` who is not in ``excluded``."""
    chain = manager_chain(session, person_id)
    active = repository.active_identities(session, chain)
    for manager_id in chain:
        if manager_id in active and manager_id not in excluded:
            return manager_id
    return None


def _candidates(session: Session, *, step: ApprovalStep, line: RequestLine,
                control_owner_id: uuid.UUID | None) -> list[uuid.UUID]:
    """The approvers the policy names for ``step``, before removing requester/beneficiary."""
    found: list[uuid.UUID | None]
    if step.kind == "manager":
        found = [first_eligible_manager(session, line.beneficiary_id, set())]
    elif step.kind == "owner":
        item_owner, app_owner = repository.item_owner_and_application_owner(session, line)
        found = [item_owner if item_owner is not None else app_owner]
    elif step.kind == "group":
        found = (list(repository.active_group_members(session, step.group_id))
                 if step.group_id is not None else [])
    elif step.kind == "control_owner":
        found = [control_owner_id]
    else:  # dual_control
        if step.group_id is not None:
            found = list(repository.active_group_members(session, step.group_id))
        else:
            item_owner, app_owner = repository.item_owner_and_application_owner(session, line)
            manager = session.scalar(
                select(Identity.manager_id).where(Identity.id == line.beneficiary_id))
            skip = (session.scalar(select(Identity.manager_id).where(Identity.id == manager))
                    if manager is not None else None)
            found = [item_owner, app_owner, skip]
    ids = [i for i in found if i is not None]
    active = repository.active_identities(session, ids)
    unique: list[uuid.UUID] = []
    for i in ids:
        if i in active and i not in unique:
            unique.append(i)
    return unique


def resolve_approvers(session: Session, *, step: ApprovalStep, line: RequestLine,
                      request: AccessRequest,
                      control_owner_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Who may decide ``step`` now. The requester and the beneficiary are removed; when that
    leaves too few people, the nearest eligible managers of whom was removed step in.
    Raises Conflict when the stage cannot be staffed."""
    excluded = {request.requester_id, line.beneficiary_id}
    candidates = _candidates(session, step=step, line=line, control_owner_id=control_owner_id)
    approvers = [c for c in candidates if c not in excluded]
    removed = [c for c in candidates if c in excluded]
    needed = 2 if step.kind == "dual_control" else 1
    if len(approvers) < needed:
        for person_id in removed:
            substitute = first_eligible_manager(session, person_id, excluded)
            if substitute is not None and substitute not in approvers:
                approvers.append(substitute)
            if len(approvers) >= needed:
                break
    if len(approvers) < needed:
        what = "two distinct approvers" if needed == 2 else "an approver"
        raise Conflict(
            f"no approver can be found for {step.label.lower()} of {line.number}: "
            f"{what} eligible (neither requester nor beneficiary) are needed",
            line=line.number, stage=step.stage, kind=step.kind)
    return approvers


def _activate(session: Session, *, step: ApprovalStep, line: RequestLine,
              request: AccessRequest, sla_hours: int, actor: Actor, clock: Clock,
              control_owner_id: uuid.UUID | None = None) -> None:
    """Start ``step``: resolve and record its approvers, set its deadline, tell them."""
    approvers = resolve_approvers(session, step=step, line=line, request=request,
                                  control_owner_id=control_owner_id)
    now = clock.now()
    before = snapshot(step)
    for approver_id in approvers:
        session.add(ApprovalStepApprover(step_id=step.id, identity_id=approver_id,
                                         origin="policy", added_at=now))
    step.state = "waiting"
    step.activated_at = now
    step.due_at = now + timedelta(hours=sla_hours)
    if step.mode == "all":
        step.required_approvals = len(approvers)
    step.updated_at = now
    session.flush()
    record(session, actor=actor, action="approval_step.open", object_type="approval_step",
           object_id=step.id, clock=clock, before=before, after=snapshot(step),
           context={"line_id": str(line.id), "line": line.number,
                    "approvers": [str(a) for a in approvers]})
    notify_waiting(session, step=step, line=line, approver_ids=approvers, clock=clock)


def open_approvals(session: Session, *, line: RequestLine, request: AccessRequest,
                   request_type: RequestType, needs: Sequence[ApprovalNeed], actor: Actor,
                   clock: Clock) -> list[ApprovalStep]:
    """Create one step per need and start the first stage (see the module docstring).

    Raises Conflict when the first stage has nobody to approve; the caller's transaction
    then changes nothing."""
    now = clock.now()
    steps: list[ApprovalStep] = []
    owners: dict[int, uuid.UUID | None] = {}
    for need in sorted(needs, key=lambda n: n.stage):
        label = (need.reason or _KIND_LABELS[need.kind])[:400]
        step = ApprovalStep(
            line_id=line.id, stage=need.stage, kind=need.kind, label=label, mode=need.mode,
            required_approvals=max(need.required, 2 if need.kind == "dual_control" else 1),
            group_id=need.group_id, state="pending", escalation_level=0,
            created_at=now, updated_at=now)
        session.add(step)
        steps.append(step)
        owners[need.stage] = need.owner_id
    session.flush()
    if steps:
        first_stage = steps[0].stage
        for step in steps:
            if step.stage == first_stage:
                _activate(session, step=step, line=line, request=request,
                          sla_hours=request_type.approval_sla_hours, actor=actor, clock=clock,
                          control_owner_id=owners.get(step.stage) or line.control_owner_id)
    return steps


# Deciding -----------------------------------------------------------------------------------


@dataclass
class LineApprovalOutcome:
    """What a decision did to the line's approval: still ``waiting`` for a stage, fully
    ``approved``, or ``rejected``."""

    line_id: uuid.UUID
    status: Literal["waiting", "approved", "rejected"]
    step: ApprovalStep
    approval: Approval


@dataclass(frozen=True)
class Eligibility:
    """How a person may decide a step: directly (``on_behalf_of`` None) or for a delegator."""

    approver_id: uuid.UUID
    on_behalf_of: uuid.UUID | None


def _load_step_for_update(session: Session, step_id: uuid.UUID) -> ApprovalStep:
    stmt = (select(ApprovalStep).where(ApprovalStep.id == step_id).with_for_update()
            .execution_options(populate_existing=True))
    step = session.scalars(stmt).one_or_none()
    if step is None:
        raise NotFound(f"approval step {step_id} does not exist")
    return step


def _check_open(step: ApprovalStep, line: RequestLine, request: AccessRequest) -> None:
    if step.state != "waiting":
        raise Conflict(f"approval step {step.id} is {step.state}, not waiting for a decision",
                       state=step.state)
    if line.state != "pending_approval":
        raise Conflict(f"line {line.number} is {line.state}; it takes no more decisions",
                       state=line.state)
    if request.state in _CLOSED_REQUEST_STATES:
        raise Conflict(f"request {request.number} is {request.state}; it takes no more "
                       "decisions", state=request.state)


def eligibility(session: Session, *, step: ApprovalStep, line: RequestLine,
                request: AccessRequest, person_id: uuid.UUID,
                at: datetime) -> list[Eligibility]:
    """The ways ``person_id`` may decide ``step`` at ``at`` (empty: not at all)."""
    if person_id in (request.requester_id, line.beneficiary_id):
        return []
    ways: list[Eligibility] = []
    named = {a.identity_id for a in repository.approvers_of(session, step.id)}
    if person_id in named:
        ways.append(Eligibility(person_id, None))
    for delegation in repository.delegations_for_step(session, step_id=step.id,
                                                      delegate_id=person_id, risk=line.risk,
                                                      at=at):
        if delegation.delegator_id != person_id:
            ways.append(Eligibility(person_id, delegation.delegator_id))
    return ways


def _close_step(session: Session, *, step: ApprovalStep, state: str, action: str,
                reason: str, actor: Actor, clock: Clock) -> None:
    now = clock.now()
    before = snapshot(step)
    step.state = state
    step.decided_at = now
    step.updated_at = now
    session.flush()
    record(session, actor=actor, action=action, object_type="approval_step", object_id=step.id,
           clock=clock, before=before, after=snapshot(step), context={"reason": reason})


def _advance(session: Session, *, line: RequestLine, request: AccessRequest, actor: Actor,
             clock: Clock) -> Literal["waiting", "approved"]:
    """After a step completed: start the next stage, or say the line is approved."""
    steps = repository.steps_of_line(session, line.id)
    if any(s.state == "waiting" for s in steps):
        return "waiting"
    pending = [s for s in steps if s.state == "pending"]
    if not pending:
        return "approved"
    request_type = session.get(RequestType, request.request_type_id)
    sla_hours = request_type.approval_sla_hours if request_type is not None else 72
    stage = pending[0].stage
    for step in pending:
        if step.stage == stage:
            _activate(session, step=step, line=line, request=request, sla_hours=sla_hours,
                      actor=actor, clock=clock, control_owner_id=line.control_owner_id)
    return "waiting"


def record_decision(session: Session, *, step_id: uuid.UUID, approver_id: uuid.UUID,
                    decision: Literal["approve", "reject"], comment: str | None, actor: Actor,
                    clock: Clock) -> LineApprovalOutcome:
    """Record ``approver_id``'s decision on a waiting step and move the line's approval on.

    Refusals change nothing: NotFound (unknown step), Conflict (the step is not waiting, its
    line or request is closed, the person already decided this step), Forbidden (the person
    may not decide it), InvalidInput (a rejection without a comment, an unknown decision).
    """
    step = _load_step_for_update(session, step_id)
    line = get_or_404(session, RequestLine, step.line_id, what="request line")
    request = get_or_404(session, AccessRequest, line.request_id, what="request")
    _check_open(step, line, request)
    now = clock.now()
    ways = eligibility(session, step=step, line=line, request=request, person_id=approver_id,
                       at=now)
    if not ways:
        raise Forbidden(f"you may not decide approval step {step.id} of {line.number}")
    previous = repository.approvals_of(session, step.id)
    decided_people = {a.approver_id for a in previous} | {
        a.on_behalf_of_id for a in previous if a.on_behalf_of_id is not None}
    if approver_id in {a.approver_id for a in previous}:
        raise Conflict(f"you already decided approval step {step.id} of {line.number}",
                       state=step.state)
    ways = [w for w in ways if (w.on_behalf_of or w.approver_id) not in decided_people]
    if not ways:
        raise Conflict(f"a decision was already recorded for the approver you act for on "
                       f"step {step.id} of {line.number}", state=step.state)
    if decision not in ("approve", "reject"):
        raise InvalidInput("the decision must be approve or reject",
                           errors=[FieldError("decision", "must be approve or reject")])
    text = comment.strip() if comment else None
    if decision == "reject" and not text:
        raise InvalidInput("a rejection needs a comment",
                           errors=[FieldError("comment", "say why the access is refused")])
    way = ways[0]
    authority_used: str | None = None
    if decision == "approve" and request.urgent and step.kind != "dual_control":
        authority = authority_of(session, approver_id)
        if authority is not None and risk_at_most(line.risk, authority.max_risk):
            authority_used = f"authority:{authority.max_risk}"
    approval = Approval(step_id=step.id, approver_id=approver_id,
                        on_behalf_of_id=way.on_behalf_of, decision=decision, comment=text,
                        authority=authority_used, decided_at=now)
    session.add(approval)
    before = snapshot(step)
    session.flush()

    status: Literal["waiting", "approved", "rejected"]
    others = [s for s in repository.steps_of_line(session, line.id) if s.id != step.id]
    if decision == "reject":
        step.state = "rejected"
        step.decided_at = now
        status = "rejected"
    else:
        count = len(previous) + 1
        complete = authority_used is not None or count >= step.required_approvals
        status = "waiting"
        if complete:
            step.state = "approved"
            step.decided_at = now
    step.updated_at = now
    session.flush()
    record(session, actor=actor, action="approval.decide", object_type="approval_step",
           object_id=step.id, clock=clock, before=before, after=snapshot(step),
           context={"approval": snapshot(approval), "line_id": str(line.id),
                    "line": line.number})
    if decision == "reject":
        for other in others:
            if other.state in ("pending", "waiting"):
                _close_step(session, step=other, state="cancelled",
                            action="approval_step.cancel",
                            reason=f"line rejected at step {step.id}", actor=actor, clock=clock)
    elif step.state == "approved":
        if authority_used is not None:
            for other in others:
                if other.state in ("pending", "waiting") and other.kind != "dual_control":
                    _close_step(session, step=other, state="skipped",
                                action="approval_step.skip",
                                reason=f"approved under delegated {authority_used} by "
                                       f"{approver_id}", actor=actor, clock=clock)
        status = _advance(session, line=line, request=request, actor=actor, clock=clock)
    return LineApprovalOutcome(line_id=line.id, status=status, step=step, approval=approval)


def cancel_open_steps(session: Session, *, line_id: uuid.UUID, actor: Actor,
                      clock: Clock) -> None:
    """Cancel the pending and waiting steps of a line (the line or its request was cancelled
    or otherwise closed)."""
    for step in repository.steps_of_line(session, line_id):
        if step.state in ("pending", "waiting"):
            _close_step(session, step=step, state="cancelled", action="approval_step.cancel",
                        reason="the line was closed", actor=actor, clock=clock)


def waiting_steps_for(session: Session, *, identity_id: uuid.UUID, at: datetime) -> Select[
        tuple[ApprovalStep]]:
    """The approver's inbox: waiting steps ``identity_id`` may decide at ``at``, directly
    or as a delegate (a select of ApprovalStep, to paginate or count)."""
    return repository.waiting_steps(identity_id, at)


# Reading ------------------------------------------------------------------------------------


def item_view(session: Session, step: ApprovalStep) -> ApprovalItem:
    """A step with its approvers, decisions, line and request."""
    line = session.get(RequestLine, step.line_id)
    assert line is not None
    request = session.get(AccessRequest, line.request_id)
    assert request is not None
    step_out = StepOut(
        id=step.id, line_id=step.line_id, stage=step.stage, kind=step.kind, label=step.label,
        mode=step.mode, required_approvals=step.required_approvals, group_id=step.group_id,
        state=step.state, activated_at=step.activated_at, due_at=step.due_at,
        escalation_level=step.escalation_level, decided_at=step.decided_at,
        approvers=[ApproverOut.model_validate(a)
                   for a in repository.approvers_of(session, step.id)],
        approvals=[ApprovalOut.model_validate(a)
                   for a in repository.approvals_of(session, step.id)],
    )
    line_out = LineOut(
        id=line.id, number=line.number, action=line.action, role_id=line.role_id,
        entitlement_id=line.entitlement_id, item_name=repository.item_name(session, line),
        risk=line.risk, privileged=line.privileged, state=line.state,
        valid_from=line.valid_from, valid_until=line.valid_until,
        mitigating_control=line.mitigating_control, decision=line.decision or {})
    request_out = RequestOut(
        id=request.id, number=request.number, state=request.state, urgent=request.urgent,
        requester_id=request.requester_id, beneficiary_id=request.beneficiary_id,
        form_data=request.form_data or {}, submitted_at=request.submitted_at)
    return ApprovalItem(step=step_out, line=line_out, request=request_out, due_at=step.due_at)


def list_approvals(session: Session, *, caller: Caller, filters: ApprovalFilter,
                   clock: Clock) -> Page[ApprovalStep]:
    """Readers: every step matching ``filters``. A person: their inbox (waiting steps they
    may decide now, delegations included)."""
    if caller.can("approvals:read"):
        stmt = repository.list_query(filters)
    elif caller.identity_id is None:
        return Page(items=[], next_cursor=None)
    else:
        stmt = repository.waiting_steps(caller.identity_id, clock.now())
        if filters.state is not None:
            stmt = stmt.where(ApprovalStep.state == filters.state)
        if filters.line_id is not None:
            stmt = stmt.where(ApprovalStep.line_id == filters.line_id)
    return paginate(session, stmt, ApprovalStep, limit=filters.limit, cursor=filters.cursor)


def get_visible(session: Session, *, caller: Caller, step_id: uuid.UUID,
                clock: Clock) -> ApprovalStep:
    """A step the caller may see: readers all; a person the steps they approve (or
    approved, or may decide as a delegate). Others: 404."""
    if caller.can("approvals:read"):
        return get_or_404(session, ApprovalStep, step_id, what="approval step")
    if caller.identity_id is not None:
        stmt = repository.steps_with_context().where(
            ApprovalStep.id == step_id, repository.visible_to(caller.identity_id, clock.now()))
        step = session.scalars(stmt).first()
        if step is not None:
            return step
    raise NotFound(f"approval step {step_id} does not exist")
