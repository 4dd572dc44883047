"""The partial-failure policy of requests whose type says ``on_partial_failure: rollback``.

When one line of such a request fails, the lines already carried out are undone: each grant
line's assignment is ended (reason "rolled back: ...") and the revoke operations that ending
records become its compensating operations (cause ``rollback``, ``compensates_id`` naming the
grant they undo, still on the line). The line keeps its state (``provisioning``, or
``fulfilled`` when it was done before its sibling failed) until its compensations are done:

- all succeeded: the undone grants become ``rolled_back`` and the line too;
- one failed: the line waits (the request stays ``provisioning``) while the failed queue deals
  with it: retried or resolved, it succeeds later and the rollback ends; cancelled, the
  rollback is given up: a line still provisioning fails, a fulfilled one stays fulfilled
  (the request is then partially fulfilled, which is the truth).

A line whose grants are all held through other assignments needs no compensation: it is
rolled back at once. A line still provisioning when a sibling fails is undone when its own
operations are done. Revoke lines are never undone (access is not given back), and accounts
created for the request stay (leavers remove accounts). The request settles from its lines,
a line being compensated counting as provisioning: rolled back and failed lines make it
``failed``.

:func:`on_line_done` is called by the requests' line hook before anything else; it answers
True when the policy took the line over (the hook must then leave the line and the request
alone: they were moved and settled here).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.assignments import service as assignments
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.models.assignment import Assignment
from idgov.models.provisioning import ProvisioningOperation
from idgov.models.requests import AccessRequest, RequestLine, RequestType
from idgov.notifications.service import notify
from idgov.provisioning import repository
from idgov.provisioning.service import TERMINAL_STATES
from idgov.requests.states import move, settle
from idgov.types import Actor

OPEN_STATES = frozenset({"pending", "running", "retry_scheduled"})


def _lines(session: Session, request_id: uuid.UUID) -> list[RequestLine]:
    return list(session.scalars(select(RequestLine).where(RequestLine.request_id == request_id)
                                .order_by(RequestLine.number)))


def _compensations(ops: Sequence[ProvisioningOperation]) -> list[ProvisioningOperation]:
    return [op for op in ops if op.cause == "rollback"]


def _rolling_back(session: Session, line: RequestLine) -> bool:
    """The line's compensations are under way or waiting for the failed queue."""
    comps = _compensations(repository.operations_of_line(session, line.id))
    return any(c.state in OPEN_STATES or c.state == "failed" for c in comps)


def _effective_states(session: Session, lines: Sequence[RequestLine]) -> list[str]:
    return ["provisioning" if ln.state == "fulfilled" and _rolling_back(session, ln)
            else ln.state for ln in lines]


def _settle(session: Session, request: AccessRequest, *, actor: Actor, clock: Clock) -> None:
    lines = _lines(session, request.id)
    before = request.state
    settle(session, request, _effective_states(session, lines), actor=actor, clock=clock,
           reason="rolled back after a line failed" if "rolled_back" in
           [ln.state for ln in lines] else None)
    if request.state != before and request.state in ("failed", "partially_fulfilled"):
        undone = [ln.number for ln in lines if ln.state == "rolled_back"]
        body = (f"Request {request.number} could not be fulfilled completely; its type "
                f"undoes the lines already done when one fails. Rolled back: "
                f"{', '.join(undone) or 'none'}. The request is "
                f"{request.state.replace('_', ' ')}.")
        for person in dict.fromkeys([request.requester_id, request.beneficiary_id]):
            notify(session, recipient_id=person, kind="request.rolled_back",
                   subject=f"{request.number} was rolled back", body=body,
                   object_type="access_request", object_id=str(request.id),
                   dedupe_key=f"request.rolled_back:{request.id}:{person}", clock=clock)


def _compensate(session: Session, *, request: AccessRequest, line: RequestLine,
                failed: Sequence[str], actor: Actor, clock: Clock) -> None:
    """End the grant line's assignment and mark the revokes it records as compensations;
    a line with nothing to undo in the targets is rolled back at once."""
    if line.action != "grant" or line.assignment_id is None:
        return
    if _compensations(repository.operations_of_line(session, line.id)):
        return  # already under way
    assignment = session.get(Assignment, line.assignment_id)
    assert assignment is not None
    now = clock.now()
    if assignment.revoked_at is None and (assignment.valid_until is None
                                          or assignment.valid_until > now):
        assignments.revoke(session, assignment_id=assignment.id,
                           reason=f"rolled back: {request.number} line(s) "
                                  f"{', '.join(failed)} failed",
                           actor=actor, clock=clock)
    ops = repository.operations_of_line(session, line.id)
    undone = {op.entitlement_id: op for op in ops
              if op.action == "grant" and op.state == "succeeded"}
    for op in ops:
        if (op.action != "revoke" or op.state != "pending" or op.cause == "rollback"
                or op.assignment_id != assignment.id):
            continue
        before = snapshot(op)
        grant = undone.get(op.entitlement_id)
        op.cause = "rollback"
        op.compensates_id = grant.id if grant is not None else None
        op.updated_at = now
        session.flush()
        record(session, actor=actor, action="provisioning.compensate",
               object_type="provisioning_operation", object_id=op.id, clock=clock,
               before=before, after=snapshot(op),
               context={"request": request.number, "line": line.number})
    if not _compensations(repository.operations_of_line(session, line.id)):
        move(session, line, "rolled_back", actor=actor, clock=clock,
             reason="rolled back: nothing to undo in the targets")


def _finish(session: Session, *, line: RequestLine, actor: Actor, clock: Clock) -> None:
    """The line's compensations are all done (terminal): end its rollback if it can."""
    comps = _compensations(repository.operations_of_line(session, line.id))
    if any(c.state == "failed" for c in comps):
        return  # the failed queue has it; retried, resolved or cancelled, we come back
    if all(c.state == "succeeded" for c in comps):
        now = clock.now()
        for c in comps:
            if c.compensates_id is None:
                continue
            grant = session.get(ProvisioningOperation, c.compensates_id)
            if grant is None or grant.state != "succeeded":
                continue
            before = snapshot(grant)
            grant.state = "rolled_back"
            grant.updated_at = now
            session.flush()
            record(session, actor=actor, action="provisioning.rolled_back",
                   object_type="provisioning_operation", object_id=grant.id, clock=clock,
                   before=before, after=snapshot(grant),
                   context={"compensated_by": str(c.id)})
        move(session, line, "rolled_back", actor=actor, clock=clock,
             reason=f"rolled back by {len(comps)} compensating operation(s)")
    elif line.state == "provisioning":
        move(session, line, "failed", actor=actor, clock=clock,
             reason="rollback given up: a compensating operation was cancelled")


def on_line_done(session: Session, line_id: uuid.UUID, actor: Actor, clock: Clock) -> bool:
    """Apply the rollback policy when every operation of a line is done.

    True when the policy took the line over (moved lines and settled the request); False
    when the requests' usual handling applies (the type keeps partial results, or nothing
    failed in the request).
    """
    line = session.get(RequestLine, line_id)
    if line is None:
        return False
    request = session.get(AccessRequest, line.request_id)
    assert request is not None
    rtype = session.get(RequestType, request.request_type_id)
    if rtype is None or rtype.on_partial_failure != "rollback":
        return False
    ops = repository.operations_of_line(session, line.id)
    if any(op.state not in TERMINAL_STATES for op in ops):
        return False
    if _compensations(ops):
        if line.state in ("provisioning", "fulfilled"):
            _finish(session, line=line, actor=actor, clock=clock)
        _settle(session, request, actor=actor, clock=clock)
        return True
    if line.state != "provisioning":
        return False
    siblings = [ln for ln in _lines(session, request.id) if ln.id != line.id]
    if any(op.state != "succeeded" for op in ops):
        done = [ln for ln in siblings if ln.state == "fulfilled"]
        if not done:
            return False  # nothing to undo (yet): the usual handling fails the line
        failed_count = sum(op.state != "succeeded" for op in ops)
        move(session, line, "failed", actor=actor, clock=clock,
             reason=f"{failed_count} provisioning operation(s) did not succeed")
        for sibling in done:
            _compensate(session, request=request, line=sibling, failed=[line.number],
                        actor=actor, clock=clock)
        _settle(session, request, actor=actor, clock=clock)
        return True
    failed_siblings = [ln.number for ln in siblings if ln.state == "failed"]
    if not failed_siblings:
        return False
    _compensate(session, request=request, line=line, failed=failed_siblings, actor=actor,
                clock=clock)
    _settle(session, request, actor=actor, clock=clock)
    return True
