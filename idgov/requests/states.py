"""The state machines of requests and request lines: explicit tables, audited moves.

Anything not in a table is refused with 409. Every move is audited as ``request.<to>`` (object
``access_request``) or ``request_line.<to>`` (object ``request_line``) with the state before and
after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.orm import Session

from idgov.audit.service import record
from idgov.clock import Clock
from idgov.errors import Conflict
from idgov.models.requests import AccessRequest, RequestLine
from idgov.types import Actor

REQUEST_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"submitted", "cancelled"}),
    "submitted": frozenset({"pending_approval", "approved", "rejected", "cancelled"}),
    "pending_approval": frozenset({"approved", "rejected", "cancelled", "provisioning",
                                   "fulfilled", "partially_fulfilled", "failed"}),
    "approved": frozenset({"provisioning", "fulfilled", "partially_fulfilled", "failed"}),
    "provisioning": frozenset({"fulfilled", "partially_fulfilled", "failed"}),
    "rejected": frozenset(),
    "cancelled": frozenset(),
    "fulfilled": frozenset(),
    "partially_fulfilled": frozenset(),
    "failed": frozenset(),
}

LINE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "pending_approval": frozenset({"approved", "rejected", "cancelled"}),
    "approved": frozenset({"provisioning", "fulfilled", "failed"}),
    "provisioning": frozenset({"fulfilled", "failed", "rolled_back"}),
    "fulfilled": frozenset({"rolled_back"}),
    "rejected": frozenset(),
    "cancelled": frozenset(),
    "failed": frozenset(),
    "rolled_back": frozenset(),
}

# A request that can still change its mind: its requester may cancel it.
CANCELLABLE = frozenset({"draft", "submitted", "pending_approval"})
# Lines still waiting to become an assignment (count as "pending" for duplicates and SoD);
# once granted, a line's assignment counts instead.
PENDING_LINE_STATES = frozenset({"pending_approval", "approved"})
OPEN_REQUEST_STATES = frozenset({"submitted", "pending_approval", "approved", "provisioning"})


def can_move(table: Mapping[str, frozenset[str]], current: str, to: str) -> bool:
    return to in table.get(current, frozenset())


def move(session: Session, obj: AccessRequest | RequestLine, to: str, *, actor: Actor,
         clock: Clock, reason: str | None = None) -> None:
    """Move a request or a line to state ``to``, audited; Conflict for any other move."""
    if isinstance(obj, AccessRequest):
        table, kind, object_type = REQUEST_TRANSITIONS, "request", "access_request"
    else:
        table, kind, object_type = LINE_TRANSITIONS, "request_line", "request_line"
    current = obj.state
    if not can_move(table, current, to):
        raise Conflict(f"{kind} {obj.number} cannot go from {current} to {to}",
                       state=current, number=obj.number)
    now = clock.now()
    obj.state = to
    obj.updated_at = now
    if isinstance(obj, RequestLine):
        if to in ("approved", "rejected"):
            obj.decided_at = now
        if reason is not None:
            obj.state_reason = reason
    if not table[to]:
        obj.closed_at = now
    session.flush()
    context = {"reason": reason} if reason else None
    record(session, actor=actor, action=f"{kind}.{to}", object_type=object_type,
           object_id=obj.id, clock=clock, before={"number": obj.number, "state": current},
           after={"number": obj.number, "state": to}, context=context)


def request_state_for(lines: Iterable[str]) -> str:
    """The state a submitted request is in, given the states of its lines.

    Any line waiting for approval: pending_approval. Any approved or provisioning line left:
    approved / provisioning. Otherwise every line is settled: all fulfilled -> fulfilled;
    some fulfilled -> partially_fulfilled; none fulfilled -> cancelled (all cancelled),
    failed (any failed or rolled back) or rejected.
    """
    states = list(lines)
    if "pending_approval" in states:
        return "pending_approval"
    if "provisioning" in states:
        return "provisioning"
    if "approved" in states:
        return "approved"
    fulfilled = states.count("fulfilled")
    if states and fulfilled == len(states):
        return "fulfilled"
    if fulfilled:
        return "partially_fulfilled"
    if all(s == "cancelled" for s in states):
        return "cancelled"
    if "failed" in states or "rolled_back" in states:
        return "failed"
    return "rejected"


def settle(session: Session, request: AccessRequest, line_states: Iterable[str], *,
           actor: Actor, clock: Clock, reason: str | None = None) -> bool:
    """Move ``request`` to the state its lines imply (through ``approved`` when the table
    needs it, e.g. submitted -> approved -> fulfilled). True when the state changed."""
    target = request_state_for(line_states)
    if target == request.state:
        return False
    if (not can_move(REQUEST_TRANSITIONS, request.state, target)
            and can_move(REQUEST_TRANSITIONS, request.state, "approved")
            and can_move(REQUEST_TRANSITIONS, "approved", target)):
        move(session, request, "approved", actor=actor, clock=clock)
    move(session, request, target, actor=actor, clock=clock, reason=reason)
    return True
