"""The assignment service functions other modules call: grant, revoke, set_last_certified."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.assignments import service
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import Conflict, InvalidInput
from idgov.models import Assignment, AuditEvent
from idgov.types import Actor
from tests.assignments.conftest import Org

LIFECYCLE = Actor.system("lifecycle")


def test_grant_records_source_request_line_and_the_granting_actor(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    line = uuid.uuid4()
    with unit_of_work(session_factory) as session:
        made = service.grant(session, identity_id=org.report, role_id=org.role,
                             source="request", reason="REQ-2026-000001", valid_from=None,
                             valid_until=None, request_line_id=line, actor=LIFECYCLE,
                             clock=clock)
    with session_factory() as session:
        row = session.get_one(Assignment, made.id)
        event = session.scalars(select(AuditEvent)
                                .where(AuditEvent.object_id == str(made.id))).one()
    assert (row.source, row.request_line_id, row.granted_by) == ("request", line,
                                                                 "system:lifecycle")
    assert event.action == "assignment.grant"
    assert event.actor_type == "system" and event.actor_name == "lifecycle"
    assert event.after is not None and event.after["request_line_id"] == str(line)


def test_grant_refuses_an_unknown_source(session_factory: sessionmaker[Session], org: Org,
                                         clock: FixedClock) -> None:
    with unit_of_work(session_factory) as session, pytest.raises(InvalidInput) as info:
        service.grant(session, identity_id=org.report, role_id=org.role, source="magic",
                      reason="x", valid_from=None, valid_until=None, actor=LIFECYCLE,
                      clock=clock)
    assert [e.field for e in info.value.errors] == ["source"]


def test_overlapping_future_grant_of_the_same_entitlement_is_a_conflict(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    now = clock.now()
    with unit_of_work(session_factory) as session:
        service.grant(session, identity_id=org.report, entitlement_id=org.entitlement,
                      source="admin", reason="x", valid_from=None,
                      valid_until=now + timedelta(days=10), actor=LIFECYCLE, clock=clock)
        with pytest.raises(Conflict):
            service.grant(session, identity_id=org.report, entitlement_id=org.entitlement,
                          source="admin", reason="y", valid_from=now + timedelta(days=5),
                          valid_until=None, actor=LIFECYCLE, clock=clock)
        # A later window that does not overlap is fine (e.g. a renewal queued ahead).
        later = service.grant(session, identity_id=org.report, entitlement_id=org.entitlement,
                              source="admin", reason="renewal",
                              valid_from=now + timedelta(days=10), valid_until=None,
                              actor=LIFECYCLE, clock=clock)
        assert later.valid_from == now + timedelta(days=10)


def test_in_force_for_lists_only_current_access(session_factory: sessionmaker[Session],
                                                org: Org, clock: FixedClock) -> None:
    now = clock.now()
    with unit_of_work(session_factory) as session:
        current = service.grant(session, identity_id=org.report, role_id=org.role,
                                source="birthright", reason="x", valid_from=None,
                                valid_until=None, actor=LIFECYCLE, clock=clock)
        service.grant(session, identity_id=org.report, role_id=org.other_role, source="admin",
                      reason="x", valid_from=now + timedelta(days=1), valid_until=None,
                      actor=LIFECYCLE, clock=clock)
        revoked = service.grant(session, identity_id=org.report, entitlement_id=org.entitlement,
                                source="admin", reason="x", valid_from=None, valid_until=None,
                                actor=LIFECYCLE, clock=clock)
        service.revoke(session, assignment_id=revoked.id, reason="done", actor=LIFECYCLE,
                       clock=clock)
        held = service.in_force_for(session, identity_id=org.report, at=now)
    assert [a.id for a in held] == [current.id]


def test_set_last_certified_sets_the_core_columns_and_is_audited(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    with unit_of_work(session_factory) as session:
        made = service.grant(session, identity_id=org.report, role_id=org.role, source="admin",
                             reason="x", valid_from=None, valid_until=None, actor=LIFECYCLE,
                             clock=clock)
    clock.advance(timedelta(days=90))
    certifier = Actor.system("certification")
    with unit_of_work(session_factory) as session:
        service.set_last_certified(session, assignment_id=made.id, at=clock.now(),
                                   by="identity:Grace Hopper", actor=certifier, clock=clock)
    with session_factory() as session:
        row = session.get_one(Assignment, made.id)
        actions = session.scalars(select(AuditEvent.action)
                                  .where(AuditEvent.object_id == str(made.id))
                                  .order_by(AuditEvent.seq)).all()
    assert row.last_certified_at == clock.now()
    assert row.last_certified_by == "identity:Grace Hopper"
    assert list(actions) == ["assignment.grant", "assignment.certify"]
