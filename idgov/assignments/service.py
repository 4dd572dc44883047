"""Assignment services: the only way access is granted or taken away in the desired state.

Requests, birthright rules, lifecycle, certification and administrators all call
:func:`grant` and :func:`revoke`. Rows are end-dated, never deleted, so the access held at any
past instant can be reconstructed.

Bulk work (a reviewer's sign-off of thousands of items) calls :func:`revoke_many` and
:func:`set_last_certified_many`: the same rows, provisioning operations and audit events as
calling :func:`revoke` / :func:`set_last_certified` once per assignment in the same order,
written with a fixed number of statements per chunk of ``BULK_CHUNK`` assignments.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.assignments import repository
from idgov.assignments.schemas import AssignmentCreate, AssignmentFilter
from idgov.audit.service import EventSpec, record, record_many, snapshot
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page, bulk_insert, get_or_404, paginate
from idgov.errors import Conflict, ErrorList, FieldError, InvalidInput, NotFound
from idgov.identities.repository import manager_chain
from idgov.models.assignment import ASSIGNMENT_SOURCES, Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.hr import BirthrightRule
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import revocations
from idgov.provisioning.service import record_assignment_change
from idgov.types import Actor

EXPIRY_REASON = "time-bound grant expired"
BULK_CHUNK = 500


def _load_targets(session: Session, *, identity_id: uuid.UUID, role_id: uuid.UUID | None,
                  entitlement_id: uuid.UUID | None, source: str, reason: str | None,
                  birthright_rule_id: uuid.UUID | None = None,
                  ) -> tuple[Identity, Entitlement | None]:
    """Check the references and mandatory fields, reporting every bad field at once."""
    errors = ErrorList()
    if source not in ASSIGNMENT_SOURCES:
        errors.add("source", f"must be one of {', '.join(ASSIGNMENT_SOURCES)}")
    if birthright_rule_id is not None and source != "birthright":
        errors.add("birthright_rule_id", "only a birthright assignment names a rule")
    if not reason or not reason.strip():
        errors.add("reason", "a reason is required")
    if (role_id is None) == (entitlement_id is None):
        errors.add("role_id", "give exactly one of role_id and entitlement_id")
    identity = session.get(Identity, identity_id)
    if identity is None:
        errors.add("identity_id", f"no identity {identity_id}")
    if role_id is not None and session.get(Role, role_id) is None:
        errors.add("role_id", f"no role {role_id}")
    if birthright_rule_id is not None and session.get(BirthrightRule, birthright_rule_id) is None:
        errors.add("birthright_rule_id", f"no birthright rule {birthright_rule_id}")
    entitlement = session.get(Entitlement, entitlement_id) if entitlement_id else None
    if entitlement_id is not None and entitlement is None:
        errors.add("entitlement_id", f"no entitlement {entitlement_id}")
    errors.raise_if_any("the assignment is invalid")
    assert identity is not None
    return identity, entitlement


def _window(*, now: datetime, valid_from: datetime | None, valid_until: datetime | None,
            entitlement: Entitlement | None) -> tuple[datetime, datetime | None]:
    """The validity window, capped by the entitlement's maximum duration."""
    start = valid_from or now
    if entitlement is not None and entitlement.max_duration_days:
        cap = start + timedelta(days=entitlement.max_duration_days)
        if valid_until is None:
            valid_until = cap
        elif valid_until > cap:
            raise InvalidInput(
                f"{entitlement.name} may be held for at most "
                f"{entitlement.max_duration_days} days",
                errors=[FieldError("valid_until", f"must be on or before {cap.isoformat()}")],
            )
    if valid_until is not None:
        if valid_until <= start:
            raise InvalidInput("valid_until must be after valid_from",
                               errors=[FieldError("valid_until", "must be after valid_from")])
        if valid_until <= now:
            raise InvalidInput("the assignment would already have ended",
                               errors=[FieldError("valid_until", "must be in the future")])
    return start, valid_until


def grant(
    session: Session,
    *,
    identity_id: uuid.UUID,
    role_id: uuid.UUID | None = None,
    entitlement_id: uuid.UUID | None = None,
    source: str,
    reason: str | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
    request_line_id: uuid.UUID | None = None,
    birthright_rule_id: uuid.UUID | None = None,
    actor: Actor,
    clock: Clock,
) -> Assignment:
    """Assign one role or one entitlement to an identity, and audit it.

    ``valid_from`` defaults to now. An entitlement with a maximum duration caps
    ``valid_until`` (and supplies it when omitted). ``birthright_rule_id`` names the rule
    behind a ``birthright`` assignment. Raises InvalidInput for dangling ids, a missing
    reason or a bad window; Conflict for a terminated identity or when the same thing is
    already assigned for an overlapping window (``extra["assignment_id"]`` names it).
    """
    identity, entitlement = _load_targets(session, identity_id=identity_id, role_id=role_id,
                                          entitlement_id=entitlement_id, source=source,
                                          reason=reason, birthright_rule_id=birthright_rule_id)
    if identity.lifecycle_state == "terminated":
        raise Conflict(f"identity {identity.employee_id} is terminated and cannot receive "
                       "new access", identity_id=str(identity_id))
    now = clock.now()
    start, until = _window(now=now, valid_from=valid_from, valid_until=valid_until,
                           entitlement=entitlement)
    existing = repository.find_overlapping(session, identity_id=identity_id, role_id=role_id,
                                           entitlement_id=entitlement_id, valid_from=start,
                                           valid_until=until, now=now)
    if existing is not None:
        what = "role" if role_id is not None else "entitlement"
        raise Conflict(f"identity already holds this {what} through assignment {existing.id}",
                       assignment_id=str(existing.id))
    assignment = Assignment(
        identity_id=identity_id, role_id=role_id, entitlement_id=entitlement_id,
        source=source, reason=reason.strip() if reason else reason,
        request_line_id=request_line_id, birthright_rule_id=birthright_rule_id,
        granted_by=actor.label,
        valid_from=start, valid_until=until, created_at=now, updated_at=now,
    )
    session.add(assignment)
    session.flush()
    record(session, actor=actor, action="assignment.grant", object_type="assignment",
           object_id=assignment.id, clock=clock, after=snapshot(assignment))
    record_assignment_change(session, assignment=assignment, change="grant", actor=actor,
                             clock=clock)
    return assignment


def revoke(session: Session, *, assignment_id: uuid.UUID, reason: str, actor: Actor,
           clock: Clock, request_line_id: uuid.UUID | None = None) -> Assignment:
    """End an assignment now, with a reason; the row stays as history.

    Raises NotFound for an unknown id, InvalidInput without a reason, Conflict when the
    assignment has already ended (revoked or expired).
    """
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required",
                           errors=[FieldError("reason", "a reason is required")])
    assignment = get_or_404(session, Assignment, assignment_id, what="assignment")
    now = clock.now()
    if assignment.revoked_at is not None:
        raise Conflict(f"assignment {assignment_id} was already revoked at "
                       f"{assignment.revoked_at.isoformat()}")
    if assignment.valid_until is not None and assignment.valid_until <= now:
        raise Conflict(f"assignment {assignment_id} already expired at "
                       f"{assignment.valid_until.isoformat()}")
    return _end(session, assignment, reason=reason.strip(), change="revoke", actor=actor,
                clock=clock, request_line_id=request_line_id)


def _end(session: Session, assignment: Assignment, *, reason: str,
         change: Literal["revoke", "expiry"], actor: Actor, clock: Clock,
         request_line_id: uuid.UUID | None = None) -> Assignment:
    """End ``assignment`` now with ``reason``, audit it, record the operations it implies."""
    before = snapshot(assignment)
    now = clock.now()
    assignment.revoked_at = now
    assignment.revoked_by = actor.label
    assignment.revoke_reason = reason
    assignment.updated_at = now
    session.flush()
    action = "assignment.revoke" if change == "revoke" else "assignment.expire"
    record(session, actor=actor, action=action, object_type="assignment",
           object_id=assignment.id, clock=clock, before=before, after=snapshot(assignment))
    record_assignment_change(session, assignment=assignment, change=change, actor=actor,
                             clock=clock, request_line_id=request_line_id)
    return assignment


def expire(session: Session, *, assignment_id: uuid.UUID, actor: Actor,
           clock: Clock) -> Assignment:
    """End an assignment whose ``valid_until`` has passed, and record the 'expiry' operations.

    Sets ``revoked_at`` (now), ``revoked_by`` and the reason "time-bound grant expired".
    Raises NotFound for an unknown id, Conflict when it was already ended (revoked or
    expired) or has not reached its end yet.
    """
    assignment = get_or_404(session, Assignment, assignment_id, what="assignment")
    now = clock.now()
    if assignment.revoked_at is not None:
        raise Conflict(f"assignment {assignment_id} already ended at "
                       f"{assignment.revoked_at.isoformat()}")
    if assignment.valid_until is None or assignment.valid_until > now:
        raise Conflict(f"assignment {assignment_id} has not expired",
                       valid_until=(assignment.valid_until.isoformat()
                                    if assignment.valid_until else None))
    return _end(session, assignment, reason=EXPIRY_REASON, change="expiry", actor=actor,
                clock=clock)


def natural_end(session: Session, assignment: Assignment) -> datetime | None:
    """The end an assignment has without a scheduled end: its entitlement's maximum duration
    counted from ``valid_from``, or none."""
    if assignment.entitlement_id is None:
        return None
    entitlement = session.get(Entitlement, assignment.entitlement_id)
    if entitlement is None or not entitlement.max_duration_days:
        return None
    return assignment.valid_from + timedelta(days=entitlement.max_duration_days)


def _live_or_conflict(assignment: Assignment, now: datetime) -> None:
    if assignment.revoked_at is not None:
        raise Conflict(f"assignment {assignment.id} already ended at "
                       f"{assignment.revoked_at.isoformat()}")
    if assignment.valid_until is not None and assignment.valid_until <= now:
        raise Conflict(f"assignment {assignment.id} already expired at "
                       f"{assignment.valid_until.isoformat()}")


def schedule_end(session: Session, *, assignment_id: uuid.UUID, at: datetime, reason: str,
                 actor: Actor, clock: Clock) -> Assignment:
    """Make an assignment end at ``at`` (a mover's grace period), and audit it.

    Nothing is provisioned now: the expiry sweep (``idgov.requests.tasks.expire_grants``)
    ends the assignment once ``at`` has passed and records the revoke operations then.
    Scheduling the end it already has changes nothing. Raises NotFound for an unknown id,
    InvalidInput without a reason or when ``at`` is not in the future (or not after
    ``valid_from``), Conflict when the assignment has ended or already ends before ``at``.
    """
    errors = ErrorList()
    if not reason or not reason.strip():
        errors.add("reason", "a reason is required")
    now = clock.now()
    if at <= now:
        errors.add("at", "must be in the future")
    errors.raise_if_any("the end cannot be scheduled")
    assignment = get_or_404(session, Assignment, assignment_id, what="assignment")
    _live_or_conflict(assignment, now)
    if assignment.valid_until is not None and assignment.valid_until <= at:
        if assignment.valid_until == at:
            return assignment
        raise Conflict(f"assignment {assignment_id} already ends earlier, at "
                       f"{assignment.valid_until.isoformat()}",
                       valid_until=assignment.valid_until.isoformat())
    if at <= assignment.valid_from:
        raise InvalidInput("the assignment would end before it starts",
                           errors=[FieldError("at", "must be after valid_from")])
    before = snapshot(assignment)
    assignment.valid_until = at
    assignment.updated_at = now
    session.flush()
    record(session, actor=actor, action="assignment.schedule_end", object_type="assignment",
           object_id=assignment.id, clock=clock, before=before, after=snapshot(assignment),
           context={"reason": reason.strip()})
    return assignment


def clear_end(session: Session, *, assignment_id: uuid.UUID, actor: Actor,
              clock: Clock) -> Assignment:
    """Take back an end set by :func:`schedule_end`, and audit it.

    The assignment gets back its natural end: none, or its entitlement's maximum duration
    from ``valid_from`` (an end chosen when it was granted is not remembered: schedule_end
    is meant for open-ended grants such as birthright access). Raises NotFound for an
    unknown id; Conflict when it has ended, has no end to take back, or when another live
    assignment of the same thing starts before the natural end (it would overlap).
    """
    assignment = get_or_404(session, Assignment, assignment_id, what="assignment")
    now = clock.now()
    _live_or_conflict(assignment, now)
    natural = natural_end(session, assignment)
    if assignment.valid_until is None or (natural is not None
                                          and assignment.valid_until >= natural):
        raise Conflict(f"assignment {assignment_id} has no scheduled end to clear")
    later = repository.find_overlapping(
        session, identity_id=assignment.identity_id, role_id=assignment.role_id,
        entitlement_id=assignment.entitlement_id, valid_from=assignment.valid_from,
        valid_until=natural, now=now, exclude=assignment.id)
    if later is not None:
        raise Conflict(f"assignment {later.id} of the same thing follows this one: its end "
                       "stays", assignment_id=str(later.id))
    before = snapshot(assignment)
    assignment.valid_until = natural
    assignment.updated_at = now
    session.flush()
    record(session, actor=actor, action="assignment.clear_end", object_type="assignment",
           object_id=assignment.id, clock=clock, before=before, after=snapshot(assignment))
    return assignment


def set_last_certified(session: Session, *, assignment_id: uuid.UUID, at: datetime, by: str,
                       actor: Actor, clock: Clock) -> Assignment:
    """Record that a reviewer confirmed this assignment (called by certification)."""
    assignment = get_or_404(session, Assignment, assignment_id, what="assignment")
    before = snapshot(assignment)
    assignment.last_certified_at = at
    assignment.last_certified_by = by
    assignment.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="assignment.certify", object_type="assignment",
           object_id=assignment.id, clock=clock, before=before, after=snapshot(assignment))
    return assignment


def set_last_certified_many(session: Session, *, items: Sequence[tuple[uuid.UUID, str]],
                            at: datetime, actor: Actor, clock: Clock) -> int:
    """:func:`set_last_certified` for many ``(assignment_id, by)`` at once: one UPDATE per
    chunk and distinct ``by``, one ``assignment.certify`` event per assignment (same shape),
    written with :func:`record_many`. An id given twice counts once, with its last ``by``.
    NotFound (nothing changed) when an id is unknown. Returns how many were certified."""
    wanted = dict(items)
    found = repository.load_many(session, list(wanted))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"assignment {missing[0]} does not exist")
    ids = list(wanted)
    now = clock.now()
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = ids[start:start + BULK_CHUNK]
        before = {i: snapshot(found[i]) for i in chunk}
        by_value: dict[str, list[uuid.UUID]] = {}
        for i in chunk:
            by_value.setdefault(wanted[i], []).append(i)
        for by, same in by_value.items():
            repository.set_columns(session, [found[i] for i in same],
                                   {"last_certified_at": at, "last_certified_by": by,
                                    "updated_at": now})
        record_many(session, (EventSpec(
            action="assignment.certify", object_type="assignment", object_id=i,
            before=before[i], after={**before[i], "last_certified_at": at,
                                     "last_certified_by": wanted[i]}) for i in chunk),
            actor=actor, clock=clock)
    return len(ids)


def revoke_many(session: Session, *, assignment_ids: Sequence[uuid.UUID], reason: str,
                actor: Actor, clock: Clock) -> list[Assignment]:
    """:func:`revoke` for many assignments, with exactly its effects when called once per id
    in this order: the same end (revoked now, by, reason), the same provisioning operations
    (an entitlement still given by an assignment later in the list is not revoked yet; see
    :mod:`idgov.provisioning.revocations`), the same ``assignment.revoke``,
    ``provisioning.record`` and ``provisioning.cancel`` events. One UPDATE, one insert of
    operations and one block of events per chunk. Checked before anything changes:
    InvalidInput without a reason, NotFound for an unknown id, Conflict for an assignment
    that has already ended or is listed twice."""
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required",
                           errors=[FieldError("reason", "a reason is required")])
    ids = list(assignment_ids)
    found = repository.load_many(session, ids)
    now = clock.now()
    seen: set[uuid.UUID] = set()
    for i in ids:
        assignment = found.get(i)
        if assignment is None:
            raise NotFound(f"assignment {i} does not exist")
        if i in seen:
            raise Conflict(f"assignment {i} is listed twice")
        seen.add(i)
        _live_or_conflict(assignment, now)
    values = {"revoked_at": now, "revoked_by": actor.label, "revoke_reason": reason.strip(),
              "updated_at": now}
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = [found[i] for i in ids[start:start + BULK_CHUNK]]
        plans = revocations.plan_revocations(session, assignments=chunk, clock=clock)
        cancels = revocations.cancel_pending_grants(
            session, assignment_ids=[a.id for a in chunk if a.valid_from > now], clock=clock)
        before = {a.id: snapshot(a) for a in chunk}
        repository.set_columns(session, chunk, values)
        bulk_insert(session, ProvisioningOperation,
                    [row for a in chunk for row in plans[a.id]])
        events: list[EventSpec] = []
        for a in chunk:
            events.append(EventSpec(action="assignment.revoke", object_type="assignment",
                                    object_id=a.id, before=before[a.id], after=snapshot(a)))
            events.extend(cancels.get(a.id, ()))
            events.extend(revocations.record_event(row) for row in plans[a.id])
        record_many(session, events, actor=actor, clock=clock)
    return [found[i] for i in ids]


def in_force_for(session: Session, *, identity_id: uuid.UUID, at: datetime) -> Sequence[Assignment]:
    """The assignments that grant ``identity_id`` access at ``at``."""
    stmt = select(Assignment).where(Assignment.identity_id == identity_id,
                                    repository.in_force(at))
    return list(session.scalars(stmt.order_by(Assignment.valid_from, Assignment.id)))


def create_assignment(session: Session, *, assignment_in: AssignmentCreate, actor: Actor,
                      clock: Clock) -> Assignment:
    """An administrator's grant (source ``admin``)."""
    return grant(session, identity_id=assignment_in.identity_id, role_id=assignment_in.role_id,
                 entitlement_id=assignment_in.entitlement_id, source="admin",
                 reason=assignment_in.reason, valid_from=assignment_in.valid_from,
                 valid_until=assignment_in.valid_until, actor=actor, clock=clock)


def can_see(session: Session, *, caller: Caller, assignment: Assignment) -> bool:
    """Row rule: global readers see all; managers their reports', owners their items'."""
    if caller.can("assignments:read"):
        return True
    if not caller.can("assignments:read_related") or caller.identity_id is None:
        return False
    if caller.identity_id in manager_chain(session, assignment.identity_id):
        return True
    return repository.owns_target(session, caller.identity_id, assignment)


def get_visible(session: Session, *, caller: Caller, assignment_id: uuid.UUID) -> Assignment:
    """Load an assignment the caller may see; one they may not see does not exist for them."""
    assignment = get_or_404(session, Assignment, assignment_id, what="assignment")
    if not can_see(session, caller=caller, assignment=assignment):
        raise NotFound(f"assignment {assignment_id} does not exist")
    return assignment


def list_assignments(session: Session, *, caller: Caller, filters: AssignmentFilter,
                     clock: Clock) -> Page[Assignment]:
    """Assignments matching ``filters`` that the caller may see; ``active`` is as of now."""
    stmt = repository.list_query(filters, now=clock.now())
    if not caller.can("assignments:read"):
        if caller.identity_id is None:
            return Page(items=[], next_cursor=None)
        stmt = stmt.where(repository.visible_to(caller.identity_id))
    return paginate(session, stmt, Assignment, limit=filters.limit, cursor=filters.cursor)
