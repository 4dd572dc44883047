"""Review flags: requested access that depended on a mover's old position, for the new
manager to keep or revoke (certification may turn open flags into a micro-campaign).

:func:`flag_requested_access` flags every request-sourced assignment in force of the mover
(one open flag per assignment at most) and tells the reviewer. The reviewer decides
(:func:`decide_flag`): ``kept`` records the assignment as certified by them, ``revoked``
ends it through :func:`idgov.assignments.service.revoke`. A flag without a reviewer (the
mover has no manager) is for administrators.

Row rules: a person sees and decides the flags they review; readers
(``review_flags:read``: administrators, auditors) see every flag, deciders
(``review_flags:decide``: administrators) decide any. A flag the caller may not see does
not exist for them (404).

Audit: ``review_flag.open`` / ``.keep`` / ``.revoke`` (object ``review_flag``), beside the
assignment's own ``assignment.certify`` or ``assignment.revoke``.
"""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.assignments import service as assignments
from idgov.audit.service import record, snapshot
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from idgov.lifecycle.flag_schemas import ReviewFlagFilter
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.hr import ReviewFlag
from idgov.models.identity import Identity
from idgov.notifications.service import notify
from idgov.types import Actor

READ_ALL = "review_flags:read"
DECIDE_ALL = "review_flags:decide"


def _item_name(session: Session, assignment: Assignment) -> str:
    if assignment.role_id is not None:
        role = session.get(Role, assignment.role_id)
        return f"role {role.name}" if role is not None else "a role"
    entitlement = session.get(Entitlement, assignment.entitlement_id)
    return f"entitlement {entitlement.name}" if entitlement is not None else "an entitlement"


def flag_requested_access(session: Session, *, identity_id: uuid.UUID,
                          reviewer_id: uuid.UUID | None, change_id: uuid.UUID | None,
                          reason: str, actor: Actor, clock: Clock) -> list[ReviewFlag]:
    """Flag the mover's request-sourced assignments in force for ``reviewer_id`` (None:
    administrators) and tell the reviewer once. An assignment that already has an open flag
    is not flagged again; the new flags are returned. Nobody reviews their own access: a
    reviewer who is the mover is dropped (administrators decide). NotFound for an unknown
    identity.
    """
    mover = get_or_404(session, Identity, identity_id, what="identity")
    if reviewer_id == identity_id:
        reviewer_id = None
    now = clock.now()
    already = select(ReviewFlag.assignment_id).where(ReviewFlag.identity_id == identity_id,
                                                     ReviewFlag.state == "open")
    flagged = set(session.scalars(already))
    made: list[ReviewFlag] = []
    items: list[str] = []
    for assignment in assignments.in_force_for(session, identity_id=identity_id, at=now):
        if assignment.source != "request" or assignment.id in flagged:
            continue
        flag = ReviewFlag(identity_id=identity_id, assignment_id=assignment.id,
                          reviewer_id=reviewer_id, change_id=change_id,
                          reason=(reason or "the person moved")[:2000], state="open",
                          created_at=now)
        session.add(flag)
        session.flush()
        record(session, actor=actor, action="review_flag.open", object_type="review_flag",
               object_id=flag.id, clock=clock, after=snapshot(flag))
        made.append(flag)
        items.append(_item_name(session, assignment))
    if made and reviewer_id is not None:
        notify(session, recipient_id=reviewer_id, kind="review_flags.opened",
               subject=f"Review the access of {mover.display_name} after their move",
               body=(f"{mover.display_name} ({mover.employee_id}) moved ({reason}). They hold "
                     f"requested access that may belong to their old position: "
                     f"{', '.join(sorted(items))}. Keep or revoke each item under "
                     "Review flags."),
               object_type="identity", object_id=str(identity_id),
               dedupe_key=f"review_flags.opened:{made[0].id}", clock=clock)
    return made


def _visible(caller: Caller, flag: ReviewFlag) -> bool:
    if caller.can(READ_ALL) or caller.can(DECIDE_ALL):
        return True
    return caller.identity_id is not None and flag.reviewer_id == caller.identity_id


def get_visible(session: Session, *, caller: Caller, flag_id: uuid.UUID) -> ReviewFlag:
    """A flag the caller may see: readers all, a person those they review; others 404."""
    flag = get_or_404(session, ReviewFlag, flag_id, what="review flag")
    if not _visible(caller, flag):
        raise NotFound(f"review flag {flag_id} does not exist")
    return flag


def list_flags(session: Session, *, caller: Caller,
               filters: ReviewFlagFilter) -> Page[ReviewFlag]:
    """Flags matching ``filters`` (open ones by default): every flag for readers, those the
    caller reviews for a person."""
    stmt = select(ReviewFlag)
    for column in ("state", "identity_id", "reviewer_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(ReviewFlag, column) == value)
    if not caller.can(READ_ALL):
        if caller.identity_id is None:
            return Page(items=[], next_cursor=None)
        stmt = stmt.where(ReviewFlag.reviewer_id == caller.identity_id)
    return paginate(session, stmt, ReviewFlag, limit=filters.limit, cursor=filters.cursor)


def close_flag(session: Session, *, flag_id: uuid.UUID, decision: Literal["kept", "revoked"],
               actor: Actor, clock: Clock, comment: str | None) -> ReviewFlag:
    """Decide an open flag: ``kept`` records its assignment as certified now by ``actor``;
    ``revoked`` ends the assignment now (when it has not ended already). Conflict when the
    flag is no longer open; InvalidInput for another decision."""
    if decision not in ("kept", "revoked"):
        raise InvalidInput("the decision must be kept or revoked",
                           errors=[FieldError("decision", "must be kept or revoked")])
    flag = get_or_404(session, ReviewFlag, flag_id, what="review flag")
    if flag.state != "open":
        raise Conflict(f"review flag {flag_id} is {flag.state}", state=flag.state)
    now = clock.now()
    assignment = get_or_404(session, Assignment, flag.assignment_id, what="assignment")
    ended = assignment.revoked_at is not None or (
        assignment.valid_until is not None and assignment.valid_until <= now)
    text = comment.strip() if comment else None
    if decision == "kept":
        if ended:
            raise Conflict(f"the access of review flag {flag_id} has already ended",
                           assignment_id=str(assignment.id))
        assignments.set_last_certified(session, assignment_id=assignment.id, at=now,
                                       by=actor.label[:400], actor=actor, clock=clock)
    elif not ended:
        assignments.revoke(session, assignment_id=assignment.id,
                           reason=f"review after a move: {text or 'not kept by the reviewer'}",
                           actor=actor, clock=clock)
    before = snapshot(flag)
    flag.state = decision
    flag.closed_at = now
    flag.closed_by = actor.label[:400]
    session.flush()
    record(session, actor=actor,
           action="review_flag.keep" if decision == "kept" else "review_flag.revoke",
           object_type="review_flag", object_id=flag.id, clock=clock, before=before,
           after=snapshot(flag), context={"comment": text})
    return flag


def decide_flag(session: Session, *, flag_id: uuid.UUID, caller: Caller,
                decision: Literal["kept", "revoked"], comment: str | None,
                clock: Clock) -> ReviewFlag:
    """The reviewer's (or an administrator's) decision on a flag: 404 when the caller may
    not see it, 403 when they see it but may not decide it, 409 when it is not open."""
    flag = get_visible(session, caller=caller, flag_id=flag_id)
    mine = caller.identity_id is not None and flag.reviewer_id == caller.identity_id
    if not mine and not caller.can(DECIDE_ALL):
        raise Forbidden("only the reviewer of the flag or an administrator decides it")
    if caller.identity_id is not None and caller.identity_id == flag.identity_id:
        raise Forbidden("nobody reviews their own access")
    return close_flag(session, flag_id=flag_id, decision=decision, actor=caller.actor,
                      clock=clock, comment=comment)
