"""Provisioning operations recorded when assignments change: what, once, and readable."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.assignments import service as assignments
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import Conflict
from idgov.models import Assignment
from idgov.models.provisioning import ProvisioningOperation
from idgov.models.requests import AccessRequest, RequestLine, RequestType
from idgov.provisioning import service as provisioning
from idgov.types import Actor
from tests.catalog.factories import audit_actions
from tests.conftest import PersonHeaders
from tests.provisioning.world import World

ACTOR = Actor.system("tests")


def _line(factory: sessionmaker[Session], world: World, person: str) -> uuid.UUID:
    """A request line to hang operations on (requests own the real flow)."""
    beneficiary = uuid.UUID(world.person[person])
    with unit_of_work(factory) as session:
        kind = RequestType(key="app-access", name="Application access")
        session.add(kind)
        session.flush()
        request = AccessRequest(number="REQ-2026-000001", requester_id=beneficiary,
                                beneficiary_id=beneficiary, request_type_id=kind.id)
        session.add(request)
        session.flush()
        line = RequestLine(number="RITM-2026-000001", request_id=request.id,
                           beneficiary_id=beneficiary,
                           role_id=uuid.UUID(world.role["AP Clerk"]))
        session.add(line)
        session.flush()
        return line.id


def test_admin_grant_of_a_role_records_a_grant_per_entitlement_it_reaches(
        world: World, session_factory: sessionmaker[Session]) -> None:
    assignment_id = world.assign("Alice", role="AP Clerk")

    ops = world.operations(identity_id=world.person["Alice"])
    assert world.summary() == {
        ("Alice", "VPN", "grant", "assignment"),
        ("Alice", "ERP-Read", "grant", "assignment"),
        ("Alice", "ERP-Post", "grant", "assignment"),
    }
    for op in ops:
        assert op["state"] == "pending"
        assert op["assignment_id"] == assignment_id
        assert op["cause_id"] == assignment_id
        assert op["application_id"] == world.api.application_id
        assert op["request_line_id"] is None
        assert op["idempotency_key"] == (f"assignment:{assignment_id}:{op['identity_id']}:"
                                         f"{op['entitlement_id']}:grant")
        assert audit_actions(session_factory, op["id"]) == ["provisioning.record"]


def test_an_entitlement_still_held_through_another_path_gives_no_operation(
        world: World) -> None:
    clerk = world.assign("Alice", role="AP Clerk")
    base = world.assign("Alice", role="Finance Base")  # VPN, ERP-Read: already held
    direct = world.assign("Alice", entitlement="ERP-Post")  # already held through AP Clerk
    assert len(world.operations()) == 3

    world.revoke(clerk)  # only ERP-Post is still held (directly); nothing is lost
    assert world.summary(action="revoke") == set()

    world.revoke(direct)
    assert world.summary(action="revoke") == {("Alice", "ERP-Post", "revoke", "assignment")}

    world.revoke(base)
    assert world.summary(action="revoke") == {
        ("Alice", "ERP-Post", "revoke", "assignment"),
        ("Alice", "VPN", "revoke", "assignment"),
        ("Alice", "ERP-Read", "revoke", "assignment"),
    }
    assert len(world.operations()) == 6


def test_the_same_cause_never_records_two_operations(
        world: World, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    assignment_id = world.assign("Bob", role="Finance Base")
    with unit_of_work(session_factory) as session:
        assignment = session.get(Assignment, uuid.UUID(assignment_id))
        assert assignment is not None
        again = provisioning.record_assignment_change(session, assignment=assignment,
                                                      change="grant", actor=ACTOR, clock=clock)
    assert again == []
    with session_factory() as session:
        count = session.scalar(select(func.count()).select_from(ProvisioningOperation))
    assert count == 2


def test_expiry_ends_the_assignment_and_records_expiry_operations(
        world: World, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    until = clock.now() + timedelta(days=1)
    assignment_id = world.assign("Carol", role="Finance Base", valid_until=until.isoformat())
    world.assign("Carol", entitlement="VPN")  # VPN stays through this one

    with unit_of_work(session_factory) as session, pytest.raises(Conflict):
        assignments.expire(session, assignment_id=uuid.UUID(assignment_id), actor=ACTOR,
                           clock=clock)  # not expired yet

    clock.advance(timedelta(days=2))
    with unit_of_work(session_factory) as session:
        ended = assignments.expire(session, assignment_id=uuid.UUID(assignment_id),
                                   actor=ACTOR, clock=clock)
        assert ended.revoked_at == clock.now()
        assert ended.revoke_reason == "time-bound grant expired"
        assert ended.revoked_by == "system:tests"

    assert world.summary(cause="expiry") == {("Carol", "ERP-Read", "revoke", "expiry")}
    assert audit_actions(session_factory, assignment_id) == ["assignment.grant",
                                                             "assignment.expire"]
    with unit_of_work(session_factory) as session, pytest.raises(Conflict):
        assignments.expire(session, assignment_id=uuid.UUID(assignment_id), actor=ACTOR,
                           clock=clock)  # already ended


def test_a_grant_starting_later_carries_not_before_and_revoking_it_cancels_the_grants(
        world: World, clock: FixedClock, session_factory: sessionmaker[Session]) -> None:
    start = clock.now() + timedelta(days=10)
    assignment_id = world.assign("Dave", entitlement="Payments-Approve",
                                 valid_from=start.isoformat())
    [op] = world.operations(identity_id=world.person["Dave"])
    assert (op["action"], op["state"], op["detail"]) == (
        "grant", "pending", {"not_before": start.isoformat()})

    world.revoke(assignment_id)
    [op] = world.operations(identity_id=world.person["Dave"])
    assert op["state"] == "cancelled"
    assert audit_actions(session_factory, op["id"]) == ["provisioning.record",
                                                       "provisioning.cancel"]


def test_list_filters_and_pages(world: World, session_factory: sessionmaker[Session],
                                clock: FixedClock) -> None:
    clerk = world.assign("Alice", role="AP Clerk")
    world.assign("Bob", entitlement="Payments-Approve")
    world.revoke(clerk)
    line_id = _line(session_factory, world, "Carol")
    with unit_of_work(session_factory) as session:
        assignments.grant(session, identity_id=uuid.UUID(world.person["Carol"]),
                          role_id=uuid.UUID(world.role["Treasury"]), source="request",
                          reason="REQ-2026-000001/RITM-2026-000001", valid_from=None,
                          valid_until=None, request_line_id=line_id, actor=ACTOR, clock=clock)

    assert world.summary(identity_id=world.person["Bob"]) == {
        ("Bob", "Payments-Approve", "grant", "assignment")}
    assert len(world.operations(action="revoke")) == 3
    assert len(world.operations(state="pending")) == 8
    assert world.operations(state="succeeded") == []
    assert world.summary(request_line_id=str(line_id)) == {
        ("Carol", "Payments-Approve", "grant", "assignment")}
    with session_factory() as session:
        assert [o.entitlement_id for o in provisioning.operations_for_line(
            session, line_id=line_id)] == [uuid.UUID(world.ent["Payments-Approve"])]

    seen: list[str] = []
    cursor = None
    while True:
        page = world.api.ok("GET", "/provisioning/operations",
                            params={"limit": "3", **({"cursor": cursor} if cursor else {})})
        assert len(page["items"]) <= 3
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8

    one = world.operations(identity_id=world.person["Bob"])[0]
    assert world.api.ok("GET", f"/provisioning/operations/{one['id']}") == one


def test_reading_needs_provisioning_read(world: World, client: TestClient,
                                         auditor_headers: dict[str, str],
                                         people: PersonHeaders) -> None:
    world.assign("Bob", entitlement="VPN")
    url = "/provisioning/operations"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=people[world.person["Bob"]]).status_code == 403
    listed = client.get(url, headers=auditor_headers)
    assert listed.status_code == 200
    op_id = listed.json()["items"][0]["id"]
    assert client.get(f"{url}/{op_id}", headers=auditor_headers).status_code == 200
    assert client.get(f"{url}/{op_id}",
                      headers=people[world.person["Bob"]]).status_code == 403
    assert client.get(f"{url}/{uuid.uuid4()}", headers=auditor_headers).status_code == 404
    assert client.get(url, params={"state": "done"}, headers=auditor_headers).status_code == 422
    assert client.get(url, params={"colour": "red"},
                      headers=auditor_headers).status_code == 422


def test_completing_the_last_operation_of_a_line_calls_the_line_hook(
        world: World, session_factory: sessionmaker[Session], clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provisioning, "_LINE_HOOKS", [])
    calls: list[uuid.UUID] = []
    provisioning.register_line_hook(lambda _s, line_id, _a, _c: calls.append(line_id))
    line_id = _line(session_factory, world, "Alice")
    with unit_of_work(session_factory) as session:
        assignments.grant(session, identity_id=uuid.UUID(world.person["Alice"]),
                          role_id=uuid.UUID(world.role["AP Clerk"]), source="request",
                          reason="REQ-2026-000001/RITM-2026-000001", valid_from=None,
                          valid_until=None, request_line_id=line_id, actor=ACTOR, clock=clock)
    ops = world.operations(request_line_id=str(line_id))
    assert len(ops) == 3

    outcomes = [(True, None), (True, None), (False, "LDAP said no")]
    for op, (succeeded, error) in zip(ops, outcomes, strict=True):
        assert calls == []
        with unit_of_work(session_factory) as session:
            provisioning.complete_operation(session, operation_id=uuid.UUID(op["id"]),
                                            succeeded=succeeded, error=error, actor=ACTOR,
                                            clock=clock)
    assert calls == [line_id]
    states = sorted((o["state"], o["attempts"], o["last_error"])
                    for o in world.operations(request_line_id=str(line_id)))
    assert states == [("failed", 1, "LDAP said no"), ("succeeded", 1, None),
                      ("succeeded", 1, None)]
    with unit_of_work(session_factory) as session, pytest.raises(Conflict):
        provisioning.complete_operation(session, operation_id=uuid.UUID(ops[0]["id"]),
                                        succeeded=True, error=None, actor=ACTOR, clock=clock)
    assert audit_actions(session_factory, ops[0]["id"]) == ["provisioning.record",
                                                           "provisioning.complete"]
