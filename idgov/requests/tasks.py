"""Sweeps over time-bound grants: warn before they end, end them when they have."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from idgov.assignments import service as assignments
from idgov.clock import Clock
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Identity
from idgov.notifications.service import notify
from idgov.requests import repository
from idgov.types import Actor


def _people(session: Session, assignment: Assignment) -> list[uuid.UUID]:
    """The beneficiary and their manager (when they have one)."""
    person = session.get(Identity, assignment.identity_id)
    found = [assignment.identity_id]
    if person is not None and person.manager_id is not None:
        found.append(person.manager_id)
    return found


def _describe(session: Session, assignment: Assignment) -> str:
    if assignment.role_id is not None:
        role = session.get(Role, assignment.role_id)
        item = f"role {role.name}" if role else "a role"
    else:
        ent = session.get(Entitlement, assignment.entitlement_id)
        item = f"entitlement {ent.name}" if ent else "an entitlement"
    person = session.get(Identity, assignment.identity_id)
    who = person.display_name if person is not None else str(assignment.identity_id)
    return f"{item} of {who}"


def warn_expiring(session: Session, *, clock: Clock, actor: Actor, warning_days: int) -> int:
    """Tell the beneficiary and their manager, once per assignment, that a time-bound grant
    ends within ``warning_days``. Returns the number of messages added."""
    now = clock.now()
    sent = 0
    for assignment in repository.expiring_assignments(
            session, now=now, until=now + timedelta(days=warning_days)):
        assert assignment.valid_until is not None
        what = _describe(session, assignment)
        for person in _people(session, assignment):
            added = notify(
                session, recipient_id=person, kind="grant.expiring",
                subject=f"Access ends on {assignment.valid_until:%Y-%m-%d}",
                body=f"The time-bound grant of {what} ends at "
                     f"{assignment.valid_until.isoformat()}. Ask again before then to keep it.",
                object_type="assignment", object_id=str(assignment.id),
                dedupe_key=f"grant.expiring:{assignment.id}:{person}", clock=clock)
            sent += added is not None
    return sent


def expire_grants(session: Session, *, clock: Clock, actor: Actor) -> int:
    """End every assignment whose ``valid_until`` has passed (recording the provisioning
    revocations) and tell the beneficiary and their manager. Returns how many ended."""
    ended = 0
    for assignment_id in repository.expired_assignment_ids(session, now=clock.now()):
        assignment = assignments.expire(session, assignment_id=assignment_id, actor=actor,
                                        clock=clock)
        what = _describe(session, assignment)
        for person in _people(session, assignment):
            notify(session, recipient_id=person, kind="grant.expired",
                   subject="Time-bound access ended",
                   body=f"The time-bound grant of {what} ended at "
                        f"{assignment.valid_until.isoformat() if assignment.valid_until else ''}.",
                   object_type="assignment", object_id=str(assignment.id),
                   dedupe_key=f"grant.expired:{assignment.id}:{person}", clock=clock)
        ended += 1
    return ended
