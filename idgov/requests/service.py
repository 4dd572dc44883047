"""Access requests: ask, check, decide by policy, approve, fulfil. Services flush, never commit.

A submission is checked in full before anything is written: the form data against the type's
JSON Schema, the items, the beneficiary, the requester's right to ask for them, durations,
the data-handling acknowledgement, duplicates, then the policy decision of every line (SoD
against what is held + what is pending + what is asked). A blocking SoD violation refuses the
whole request (409) with the rule and the paths on both sides. Then the request and its lines
get their numbers, lines that need people get their approval steps (idgov.approvals), and
auto-approved lines are fulfilled at once: the assignment is granted (or ended) in the same
transaction and the provisioning operations it implies are recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from idgov.approvals import service as approvals
from idgov.approvals.schemas import ApprovalOut
from idgov.assignments import service as assignments
from idgov.audit.service import record, snapshot
from idgov.auth.caller import Caller
from idgov.catalog import sod
from idgov.catalog.schemas import SodExceptionCreate
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, ErrorList, Forbidden, NotFound
from idgov.models.requests import AccessRequest, RequestLine, RequestType
from idgov.notifications.service import notify
from idgov.policy.snapshot import PolicySnapshot
from idgov.provisioning import rollback
from idgov.provisioning import service as provisioning
from idgov.requests import repository
from idgov.requests.checks import (
    Checked,
    check_items,
    check_submission,
    load_beneficiary,
    load_type,
    person_id,
)
from idgov.requests.numbering import LINE_SERIES, REQUEST_SERIES, next_number
from idgov.requests.schemas import (
    LineIn,
    LineRead,
    MitigationIn,
    RequestCreate,
    RequestFilter,
    RequestRead,
    StepOut,
)
from idgov.requests.states import CANCELLABLE, move, settle
from idgov.types import Actor

# --- reading ---------------------------------------------------------------------------------


def request_view(session: Session, request: AccessRequest) -> RequestRead:
    """The request with its lines, each line's steps, approvers and approvals."""
    session.flush()
    lines = repository.lines_of(session, request.id)
    steps, approvers, approvals_by_step = repository.steps_of(session, [ln.id for ln in lines])
    names = repository.item_names(session, lines)
    rtype = session.get(RequestType, request.request_type_id)
    line_views = []
    for line in lines:
        line_steps = [
            StepOut.model_validate({
                **{k: getattr(s, k) for k in StepOut.model_fields
                   if k not in ("approvers", "approvals")},
                "approvers": approvers.get(s.id, []),
                "approvals": [ApprovalOut.model_validate(a)
                              for a in approvals_by_step.get(s.id, [])],
            })
            for s in steps if s.line_id == line.id
        ]
        item = line.role_id or line.entitlement_id
        line_views.append(LineRead.model_validate({
            **{k: getattr(line, k) for k in LineRead.model_fields
               if k not in ("steps", "item_name")},
            "item_name": names.get(item) if item else None,
            "steps": line_steps,
        }))
    return RequestRead.model_validate({
        **{k: getattr(request, k) for k in RequestRead.model_fields
           if k not in ("lines", "request_type")},
        "request_type": rtype.key if rtype is not None else "",
        "lines": line_views,
    })


def can_see(session: Session, *, caller: Caller, request: AccessRequest, at: datetime) -> bool:
    """Row rule: requests:read sees all; a person their own requests (as requester or
    beneficiary) and those they approve a step of (or are the current delegate for)."""
    if caller.can("requests:read"):
        return True
    person = caller.identity_id
    if person is None:
        return False
    if person in (request.requester_id, request.beneficiary_id):
        return True
    return repository.is_step_party(session, request_id=request.id, person_id=person, at=at)


def get_visible(session: Session, *, caller: Caller, request_id: uuid.UUID,
                clock: Clock) -> AccessRequest:
    """A request the caller may see; one they may not see does not exist for them."""
    request = get_or_404(session, AccessRequest, request_id, what="request")
    if not can_see(session, caller=caller, request=request, at=clock.now()):
        raise NotFound(f"request {request_id} does not exist")
    return request


def list_requests(session: Session, *, caller: Caller,
                  filters: RequestFilter) -> Page[AccessRequest]:
    """Requests matching ``filters``: all with requests:read, else the caller's own."""
    stmt = repository.list_query(filters)
    if not caller.can("requests:read"):
        if caller.identity_id is None:
            return Page(items=[], next_cursor=None)
        stmt = stmt.where(repository.own(caller.identity_id))
    return paginate(session, stmt, AccessRequest, limit=filters.limit, cursor=filters.cursor)


# --- writing ---------------------------------------------------------------------------------


def _line_row(request: AccessRequest, line: LineIn, *, number: str,
              now: datetime) -> RequestLine:
    m = line.mitigation
    return RequestLine(
        number=number, request_id=request.id, beneficiary_id=request.beneficiary_id,
        action=line.action, role_id=line.role_id, entitlement_id=line.entitlement_id,
        valid_until=line.valid_until, state="pending_approval", risk="low",
        privileged=False, fulfilment="automatic",
        decision={"requested_duration_days": line.duration_days} if line.duration_days else {},
        mitigating_control=m.control if m else None, control_owner_id=m.owner_id if m else None,
        exception_expires_at=m.expires_at if m else None, sod_exception_ids=[],
        created_at=now, updated_at=now)


def _stored_line_in(line: RequestLine) -> LineIn:
    """A draft's stored line as the input it came from."""
    mitigation = (MitigationIn(control=line.mitigating_control, owner_id=line.control_owner_id,
                               expires_at=line.exception_expires_at)
                  if line.mitigating_control and line.control_owner_id
                  and line.exception_expires_at else None)
    return LineIn(action=line.action, role_id=line.role_id,
                  entitlement_id=line.entitlement_id,
                  valid_until=None if line.decision.get("requested_duration_days")
                  else line.valid_until,
                  duration_days=line.decision.get("requested_duration_days"),
                  mitigation=mitigation)


def _decision_dict(c: Checked) -> dict[str, Any]:
    assert c.decision is not None
    d: dict[str, Any] = dict(c.decision.as_dict())
    d["exceptions_needed"] = [str(x) for x in c.decision.exceptions_needed]
    if c.line.duration_days:
        d["requested_duration_days"] = c.line.duration_days
    if "extends_assignment_id" in c.extra:
        d["extends_assignment_id"] = c.extra["extends_assignment_id"]
    return d


def _recipients(request: AccessRequest) -> list[uuid.UUID]:
    return list(dict.fromkeys([request.requester_id, request.beneficiary_id]))


def _tell(session: Session, request: AccessRequest, *, kind: str, subject: str, body: str,
          dedupe: str, clock: Clock) -> None:
    for person in _recipients(request):
        notify(session, recipient_id=person, kind=kind, subject=subject, body=body,
               object_type="access_request", object_id=str(request.id),
               dedupe_key=f"{kind}:{dedupe}:{person}", clock=clock)


def _fulfil(session: Session, *, request: AccessRequest, line: RequestLine, actor: Actor,
            clock: Clock) -> None:
    """Carry out an approved line: grant or end the assignment, record the SoD exception of a
    mitigation, then 'provisioning' when operations were recorded, else 'fulfilled'."""
    now = clock.now()
    reason = f"{request.number}/{line.number}"
    if line.action == "grant":
        start = line.valid_from
        until = line.valid_until
        days = line.decision.get("requested_duration_days")
        if days:
            until = (start or now) + timedelta(days=int(days))
        assignment = assignments.grant(
            session, identity_id=line.beneficiary_id, role_id=line.role_id,
            entitlement_id=line.entitlement_id, source="request", reason=reason,
            valid_from=start, valid_until=until, request_line_id=line.id, actor=actor,
            clock=clock)
        before = snapshot(line)
        line.assignment_id = assignment.id
        line.valid_from = assignment.valid_from
        line.valid_until = assignment.valid_until
        granted: list[str] = []
        if line.mitigating_control and line.control_owner_id and line.exception_expires_at:
            for rule_id in line.decision.get("exceptions_needed", []):
                exception = sod.grant_exception(
                    session, rule_id=uuid.UUID(rule_id),
                    exception_in=SodExceptionCreate(
                        identity_id=line.beneficiary_id, control=line.mitigating_control,
                        approver_id=line.control_owner_id,
                        expires_at=line.exception_expires_at),
                    actor=actor, clock=clock)
                granted.append(str(exception.id))
        line.sod_exception_ids = granted
        line.updated_at = now
        session.flush()
        record(session, actor=actor, action="request_line.fulfil", object_type="request_line",
               object_id=line.id, clock=clock, before=before, after=snapshot(line))
    else:
        assert line.assignment_id is not None
        # The revoke operations belong to this line, so that it is fulfilled only once the
        # target has removed the access.
        assignments.revoke(session, assignment_id=line.assignment_id,
                           reason=f"{reason}: revoked on request", actor=actor, clock=clock,
                           request_line_id=line.id)
    operations = provisioning.operations_for_line(session, line_id=line.id)
    pending = [op for op in operations if op.state not in provisioning.TERMINAL_STATES]
    move(session, line, "provisioning" if pending else "fulfilled", actor=actor, clock=clock)


def _after_lines_changed(session: Session, request: AccessRequest, *, actor: Actor,
                         clock: Clock, reason: str | None = None) -> None:
    """Settle the request's state from its lines and tell its people when it is done."""
    before = request.state
    lines = repository.lines_of(session, request.id)
    settle(session, request, [ln.state for ln in lines], actor=actor, clock=clock,
           reason=reason)
    if request.state != before and request.state in ("fulfilled", "partially_fulfilled"):
        done = [ln.number for ln in lines if ln.state == "fulfilled"]
        _tell(session, request, kind="request.fulfilled",
              subject=f"{request.number} is fulfilled",
              body=f"Request {request.number} is {request.state.replace('_', ' ')}: "
                   f"{', '.join(done)} granted as asked.",
              dedupe=str(request.id), clock=clock)


def _activate(session: Session, *, request: AccessRequest, rtype: RequestType,
              rows: Sequence[RequestLine], checked: Sequence[Checked], snap: PolicySnapshot,
              actor: Actor, clock: Clock) -> None:
    """Submit: store the decisions, open approvals, fulfil auto-approved lines."""
    now = clock.now()
    move(session, request, "submitted", actor=actor, clock=clock)
    request.submitted_at = now
    request.policy_version = snap.version
    for row, c in zip(rows, checked, strict=True):
        assert c.decision is not None
        row.decision = _decision_dict(c)
        row.risk = c.decision.risk
        row.privileged = c.decision.privileged
        row.fulfilment = c.fulfilment
        row.valid_from = c.valid_from
        row.valid_until = c.valid_until
        row.assignment_id = c.assignment_id
        if not c.decision.exceptions_needed:
            row.mitigating_control = row.control_owner_id = None
            row.exception_expires_at = None
        row.updated_at = now
    session.flush()
    for row in rows:
        record(session, actor=actor, action="request_line.submit", object_type="request_line",
               object_id=row.id, clock=clock, after=snapshot(row))
    _tell(session, request, kind="request.submitted",
          subject=f"{request.number} submitted",
          body=f"Request {request.number} ({rtype.name}) was submitted with "
               f"{len(rows)} line(s): " + ", ".join(r.number for r in rows) + ".",
          dedupe=str(request.id), clock=clock)
    for row, c in zip(rows, checked, strict=True):
        assert c.decision is not None
        if c.decision.auto_approved:
            why = ("a revocation needs no approval" if row.action == "revoke" else
                   f"auto-approved: risk {row.risk} is within the type's limit")
            move(session, row, "approved", actor=actor, clock=clock, reason=why)
            _fulfil(session, request=request, line=row, actor=actor, clock=clock)
        else:
            approvals.open_approvals(session, line=row, request=request, request_type=rtype,
                                     needs=c.decision.approvals, actor=actor, clock=clock)
    _after_lines_changed(session, request, actor=actor, clock=clock)


def create_request(session: Session, *, request_in: RequestCreate, caller: Caller,
                   window_days: int, clock: Clock) -> AccessRequest:
    """Ask for access (see the module docstring); ``submit=false`` keeps a draft."""
    requester_id = person_id(caller)
    now = clock.now()
    rtype = load_type(session, request_in.request_type)
    beneficiary = load_beneficiary(session, requester_id=requester_id,
                                    beneficiary_id=request_in.beneficiary_id or requester_id)
    checked: list[Checked] = []
    snap: PolicySnapshot | None = None
    if request_in.submit:
        checked, snap = check_submission(
            session, rtype=rtype, requester_id=requester_id, beneficiary_id=beneficiary.id,
            form_data=request_in.form_data, lines=request_in.lines, exclude_request_id=None,
            window_days=window_days, now=now)
    else:
        errors = ErrorList()
        check_items(session, request_in.lines, errors)
        errors.raise_if_any("the request is invalid")
    year = now.year
    request = AccessRequest(
        number=next_number(session, REQUEST_SERIES, year), requester_id=requester_id,
        beneficiary_id=beneficiary.id, request_type_id=rtype.id,
        form_data=request_in.form_data, urgent=request_in.urgent, state="draft",
        created_at=now, updated_at=now)
    session.add(request)
    session.flush()
    rows = []
    for line in request_in.lines:
        row = _line_row(request, line, number=next_number(session, LINE_SERIES, year), now=now)
        session.add(row)
        rows.append(row)
    session.flush()
    record(session, actor=caller.actor, action="request.create", object_type="access_request",
           object_id=request.id, clock=clock, after=snapshot(request),
           context={"lines": [r.number for r in rows]})
    if request_in.submit:
        assert snap is not None
        _activate(session, request=request, rtype=rtype, rows=rows, checked=checked, snap=snap,
                  actor=caller.actor, clock=clock)
    return request


def submit_request(session: Session, *, request_id: uuid.UUID, caller: Caller,
                   window_days: int, clock: Clock) -> AccessRequest:
    """Submit a draft: the same checks as a direct submission, on the stored lines."""
    request = get_visible(session, caller=caller, request_id=request_id, clock=clock)
    if caller.identity_id != request.requester_id:
        raise Forbidden(f"only the requester submits {request.number}")
    if request.state != "draft":
        raise Conflict(f"request {request.number} is {request.state}: only a draft is "
                       "submitted", state=request.state)
    rtype = get_or_404(session, RequestType, request.request_type_id, what="request type")
    if not rtype.active:
        raise Conflict(f"request type {rtype.key!r} was retired; ask again with another type")
    load_beneficiary(session, requester_id=request.requester_id,
                      beneficiary_id=request.beneficiary_id)
    rows = repository.lines_of(session, request.id)
    checked, snap = check_submission(
        session, rtype=rtype, requester_id=request.requester_id,
        beneficiary_id=request.beneficiary_id, form_data=request.form_data,
        lines=[_stored_line_in(r) for r in rows], exclude_request_id=request.id,
        window_days=window_days, now=clock.now())
    _activate(session, request=request, rtype=rtype, rows=rows, checked=checked, snap=snap,
              actor=caller.actor, clock=clock)
    return request


def cancel_request(session: Session, *, request_id: uuid.UUID, caller: Caller, reason: str,
                   clock: Clock) -> AccessRequest:
    """The requester (or the beneficiary) withdraws a request not yet decided: its pending
    lines and their open approval steps are cancelled. 409 once it is decided."""
    request = get_visible(session, caller=caller, request_id=request_id, clock=clock)
    if caller.identity_id not in (request.requester_id, request.beneficiary_id):
        raise Forbidden(f"only the requester or the beneficiary cancels {request.number}")
    if request.state not in CANCELLABLE:
        raise Conflict(f"request {request.number} is {request.state}: it can no longer be "
                       "cancelled", state=request.state)
    actor = caller.actor
    for line in repository.lines_of(session, request.id):
        if line.state == "pending_approval":
            approvals.cancel_open_steps(session, line_id=line.id, actor=actor, clock=clock)
            move(session, line, "cancelled", actor=actor, clock=clock, reason=reason)
    was = request.state
    request.cancel_reason = reason
    if was == "draft":
        move(session, request, "cancelled", actor=actor, clock=clock, reason=reason)
    else:
        _after_lines_changed(session, request, actor=actor, clock=clock, reason=reason)
    if was != "draft":
        _tell(session, request, kind="request.cancelled",
              subject=f"{request.number} cancelled",
              body=f"Request {request.number} was cancelled by {caller.name}: {reason}",
              dedupe=str(request.id), clock=clock)
    return request


# --- deciding ------------------------------------------------------------------------------


def decide_step(session: Session, *, step_id: uuid.UUID, caller: Caller,
                decision: Literal["approve", "reject"], comment: str | None,
                clock: Clock) -> RequestRead:
    """An approver's decision on a step, and what follows in the same transaction.

    The approvals module records the decision (refusing the wrong person with 403, a second
    decision or a closed request with 409). When the line's last stage is approved, the line
    is approved and fulfilled at once (assignment granted or ended, SoD exception of a
    mitigation recorded, provisioning operations recorded); a rejection rejects the line.
    The request's state follows its lines; requester and beneficiary are told.
    """
    if caller.identity_id is None:
        raise Forbidden("only a person decides approval steps")
    actor = caller.actor
    outcome = approvals.record_decision(session, step_id=step_id,
                                        approver_id=caller.identity_id, decision=decision,
                                        comment=comment, actor=actor, clock=clock)
    line = get_or_404(session, RequestLine, outcome.line_id, what="request line")
    request = get_or_404(session, AccessRequest, line.request_id, what="request")
    names = repository.item_names(session, [line])
    item = names.get(line.role_id or line.entitlement_id or uuid.UUID(int=0), "the item")
    if outcome.status == "approved":
        if line.state == "pending_approval":
            move(session, line, "approved", actor=actor, clock=clock)
        _tell(session, request, kind="request.decided",
              subject=f"{line.number} approved",
              body=f"{line.number} ({line.action} {item}) of {request.number} was approved.",
              dedupe=f"{line.id}", clock=clock)
        _fulfil(session, request=request, line=line, actor=actor, clock=clock)
    elif outcome.status == "rejected":
        if line.state == "pending_approval":
            move(session, line, "rejected", actor=actor, clock=clock, reason=comment)
        _tell(session, request, kind="request.decided",
              subject=f"{line.number} rejected",
              body=f"{line.number} ({line.action} {item}) of {request.number} was rejected: "
                   f"{comment or ''}",
              dedupe=f"{line.id}", clock=clock)
    _after_lines_changed(session, request, actor=actor, clock=clock)
    return request_view(session, request)


def line_operations_done(session: Session, line_id: uuid.UUID, actor: Actor,
                         clock: Clock) -> None:
    """Provisioning hook: every operation of a line is done, so a line in 'provisioning'
    becomes 'fulfilled' (all succeeded) or 'failed'."""
    line = session.get(RequestLine, line_id)
    if line is None:
        return
    if rollback.on_line_done(session, line_id, actor, clock):
        return  # the type's rollback policy moved the lines and settled the request
    if line.state != "provisioning":
        return
    operations = provisioning.operations_for_line(session, line_id=line_id)
    failed = [op for op in operations if op.state != "succeeded"]
    move(session, line, "failed" if failed else "fulfilled", actor=actor, clock=clock,
         reason=f"{len(failed)} provisioning operation(s) did not succeed" if failed else None)
    request = get_or_404(session, AccessRequest, line.request_id, what="request")
    _after_lines_changed(session, request, actor=actor, clock=clock)


def install() -> None:
    """Register the provisioning hook (idempotent; also done when this module loads)."""
    provisioning.register_line_hook(line_operations_done)


install()
