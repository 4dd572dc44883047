"""assignments.schedule_end / clear_end: an end in the future, taken back if need be."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.assignments import service as assignments
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import Conflict, InvalidInput, NotFound
from idgov.models import Assignment, AuditEvent, ProvisioningOperation
from idgov.requests.tasks import expire_grants
from idgov.types import Actor
from tests.birthright.conftest import Org

ADMIN = Actor.system("admin")


def grant(session: Session, org: Org, clock: FixedClock, **kwargs: object) -> Assignment:
    fields: dict[str, object] = {"identity_id": org.sales1, "role_id": org.sales_role,
                                 "source": "admin", "reason": "x", "valid_from": None,
                                 "valid_until": None} | kwargs
    return assignments.grant(session, actor=ADMIN, clock=clock, **fields)  # type: ignore[arg-type]


def test_schedule_end_sets_the_end_audits_it_and_the_sweep_ends_it(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    at = clock.now() + timedelta(days=3)
    with unit_of_work(session_factory) as session:
        made = grant(session, org, clock)
        ended = assignments.schedule_end(session, assignment_id=made.id, at=at,
                                         reason="moved to Engineering", actor=ADMIN,
                                         clock=clock)
        assert ended.valid_until == at and ended.revoked_at is None
        # The same end again changes nothing (and is not audited twice).
        assignments.schedule_end(session, assignment_id=made.id, at=at, reason="again",
                                 actor=ADMIN, clock=clock)
    with session_factory() as session:
        events = session.execute(select(AuditEvent.action, AuditEvent.context)
                                 .where(AuditEvent.object_id == str(made.id))
                                 .order_by(AuditEvent.seq)).all()
    assert events[1:] == [("assignment.schedule_end", {"reason": "moved to Engineering"})]
    clock.set(at)
    with unit_of_work(session_factory) as session:
        assert expire_grants(session, clock=clock, actor=ADMIN) == 1
    with session_factory() as session:
        revokes = list(session.scalars(select(ProvisioningOperation.entitlement_id).where(
            ProvisioningOperation.assignment_id == made.id,
            ProvisioningOperation.action == "revoke")))
        assert session.get_one(Assignment, made.id).revoked_at == at
    assert revokes == [org.sales_ent]


def test_schedule_end_refuses_past_instants_later_ends_and_ended_assignments(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    now = clock.now()
    with unit_of_work(session_factory) as session:
        timed = grant(session, org, clock, valid_until=now + timedelta(days=2))
        with pytest.raises(InvalidInput) as info:
            assignments.schedule_end(session, assignment_id=timed.id, at=now, reason=" ",
                                     actor=ADMIN, clock=clock)
        assert [e.field for e in info.value.errors] == ["reason", "at"]
        with pytest.raises(Conflict):
            assignments.schedule_end(session, assignment_id=timed.id,
                                     at=now + timedelta(days=5), reason="r", actor=ADMIN,
                                     clock=clock)
        assignments.revoke(session, assignment_id=timed.id, reason="done", actor=ADMIN,
                           clock=clock)
        with pytest.raises(Conflict):
            assignments.schedule_end(session, assignment_id=timed.id,
                                     at=now + timedelta(days=1), reason="r", actor=ADMIN,
                                     clock=clock)
        future = grant(session, org, clock, role_id=org.eng_role,
                       valid_from=now + timedelta(days=10))
        with pytest.raises(InvalidInput):
            assignments.schedule_end(session, assignment_id=future.id,
                                     at=now + timedelta(days=5), reason="r", actor=ADMIN,
                                     clock=clock)
        with pytest.raises(NotFound):
            assignments.clear_end(session, assignment_id=org.sales1, actor=ADMIN, clock=clock)


def test_clear_end_restores_the_natural_end(session_factory: sessionmaker[Session], org: Org,
                                            clock: FixedClock) -> None:
    now = clock.now()
    with unit_of_work(session_factory) as session:
        open_ended = grant(session, org, clock)
        capped = grant(session, org, clock, role_id=None, entitlement_id=org.capped)
        with pytest.raises(Conflict):  # nothing scheduled
            assignments.clear_end(session, assignment_id=open_ended.id, actor=ADMIN,
                                  clock=clock)
        with pytest.raises(Conflict):  # only its entitlement's cap
            assignments.clear_end(session, assignment_id=capped.id, actor=ADMIN, clock=clock)
        for made in (open_ended, capped):
            assignments.schedule_end(session, assignment_id=made.id,
                                     at=now + timedelta(days=1), reason="r", actor=ADMIN,
                                     clock=clock)
        assert assignments.clear_end(session, assignment_id=open_ended.id, actor=ADMIN,
                                     clock=clock).valid_until is None
        assert assignments.clear_end(session, assignment_id=capped.id, actor=ADMIN,
                                     clock=clock).valid_until == now + timedelta(days=90)
    with session_factory() as session:
        acts = list(session.scalars(select(AuditEvent.action)
                                    .where(AuditEvent.object_id == str(open_ended.id))
                                    .order_by(AuditEvent.seq)))
    assert acts == ["assignment.grant", "assignment.schedule_end", "assignment.clear_end"]


def test_clear_end_keeps_an_end_another_assignment_follows(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    at = clock.now() + timedelta(days=1)
    with unit_of_work(session_factory) as session:
        first = grant(session, org, clock)
        assignments.schedule_end(session, assignment_id=first.id, at=at, reason="r",
                                 actor=ADMIN, clock=clock)
        follower = grant(session, org, clock, valid_from=at)
        with pytest.raises(Conflict) as info:
            assignments.clear_end(session, assignment_id=first.id, actor=ADMIN, clock=clock)
        assert info.value.extra["assignment_id"] == str(follower.id)
