"""recompute: birthright access follows HR attributes, through the assignment service."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.assignments import service as assignments
from idgov.birthright import service
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models import Assignment, AuditEvent, BirthrightRule, Identity, ProvisioningOperation
from idgov.requests.tasks import expire_grants
from idgov.types import Actor
from tests.birthright.conftest import GRACE, Org

HR = Actor.system("hr-feed")
SWEEP = Actor.system("scheduler")


def eq(attribute: str, value: str) -> dict[str, Any]:
    return {"attribute": attribute, "op": "eq", "value": value}


def add_rule(factory: sessionmaker[Session], name: str, condition: dict[str, Any], *,
             role_id: uuid.UUID | None = None, entitlement_id: uuid.UUID | None = None,
             enabled: bool = True) -> uuid.UUID:
    with unit_of_work(factory) as session:
        rule = BirthrightRule(name=name, condition=condition, role_id=role_id,
                              entitlement_id=entitlement_id, enabled=enabled)
        session.add(rule)
        session.flush()
        return rule.id


def run(factory: sessionmaker[Session], clock: FixedClock, identity_id: uuid.UUID,
        **kwargs: Any) -> dict[str, list[Any]]:
    """Recompute in its own unit of work; the result as lists of (rule id, assignment id)."""
    with unit_of_work(factory) as session:
        result = service.recompute(session, identity_id=identity_id,
                                   grace=kwargs.pop("grace", GRACE), actor=HR, clock=clock,
                                   reason=kwargs.pop("reason", "HR change"), **kwargs)
        return {name: [(a.birthright_rule_id, a.id) for a in getattr(result, name)]
                for name in ("granted", "ending", "restored", "revoked")} | {
            "skipped": [(s.rule_id, s.blocking_assignment_id) for s in result.skipped]}


def live(factory: sessionmaker[Session], identity_id: uuid.UUID) -> list[Assignment]:
    with factory() as session:
        return list(session.scalars(
            select(Assignment).where(Assignment.identity_id == identity_id,
                                     Assignment.revoked_at.is_(None))
            .order_by(Assignment.valid_from)))


def move(factory: sessionmaker[Session], identity_id: uuid.UUID, **fields: Any) -> None:
    with unit_of_work(factory) as session:
        identity = session.get_one(Identity, identity_id)
        for key, value in fields.items():
            setattr(identity, key, value)


def ops(factory: sessionmaker[Session], identity_id: uuid.UUID) -> list[tuple[str, str, str]]:
    with factory() as session:
        rows = session.execute(
            select(ProvisioningOperation.action, ProvisioningOperation.cause,
                   ProvisioningOperation.entitlement_id)
            .where(ProvisioningOperation.identity_id == identity_id,
                   ProvisioningOperation.entitlement_id.is_not(None))
            .order_by(ProvisioningOperation.ordinal))
        return [(action, cause, str(ent)) for action, cause, ent in rows]


def test_a_matching_rule_is_granted_with_its_rule_and_provisioning_recorded(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    rule = add_rule(session_factory, "sales", eq("department", "sales"), role_id=org.sales_role)
    result = run(session_factory, clock, org.sales1, reason="joiner E001")
    assert [r for r, _a in result["granted"]] == [rule]
    (held,) = live(session_factory, org.sales1)
    assert (held.source, held.birthright_rule_id, held.role_id, held.reason,
            held.valid_until) == ("birthright", rule, org.sales_role, "joiner E001", None)
    assert ops(session_factory, org.sales1) == [("grant", "assignment", str(org.sales_ent))]
    # Nothing changes the second time.
    assert run(session_factory, clock, org.sales1) == {
        "granted": [], "ending": [], "restored": [], "revoked": [], "skipped": []}


def test_a_mover_keeps_old_access_for_the_grace_period_then_the_sweep_ends_it(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    sales = add_rule(session_factory, "sales", eq("department", "Sales"), role_id=org.sales_role)
    eng = add_rule(session_factory, "eng", eq("department", "Engineering"),
                   role_id=org.eng_role)
    run(session_factory, clock, org.sales1)
    moved_at = clock.now()
    move(session_factory, org.sales1, department="Engineering")
    result = run(session_factory, clock, org.sales1)
    assert [r for r, _ in result["granted"]] == [eng]
    assert [r for r, _ in result["ending"]] == [sales]
    by_rule = {a.birthright_rule_id: a for a in live(session_factory, org.sales1)}
    assert by_rule[sales].valid_until == moved_at + GRACE
    assert by_rule[eng].valid_until is None
    with session_factory() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_id == str(by_rule[sales].id)).order_by(AuditEvent.seq)))
    assert actions == ["assignment.grant", "assignment.schedule_end"]

    # One second before the end the sweep leaves it alone; at the end it ends it.
    clock.set(moved_at + GRACE - timedelta(seconds=1))
    with unit_of_work(session_factory) as session:
        assert expire_grants(session, clock=clock, actor=SWEEP) == 0
    clock.set(moved_at + GRACE)
    with unit_of_work(session_factory) as session:
        assert expire_grants(session, clock=clock, actor=SWEEP) == 1
    with session_factory() as session:
        ended = session.get_one(Assignment, by_rule[sales].id)
    assert ended.revoked_at == moved_at + GRACE
    assert [a.birthright_rule_id for a in live(session_factory, org.sales1)] == [eng]
    assert ops(session_factory, org.sales1) == [
        ("grant", "assignment", str(org.sales_ent)),
        ("grant", "assignment", str(org.eng_ent)),
        ("revoke", "expiry", str(org.sales_ent)),
    ]


def test_moving_back_within_the_grace_period_takes_the_end_back(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    sales = add_rule(session_factory, "sales", eq("department", "Sales"), role_id=org.sales_role)
    run(session_factory, clock, org.sales2)
    move(session_factory, org.sales2, department="Marketing")
    assert [r for r, _ in run(session_factory, clock, org.sales2)["ending"]] == [sales]
    clock.advance(timedelta(days=2))
    move(session_factory, org.sales2, department="Sales")
    result = run(session_factory, clock, org.sales2)
    assert [r for r, _ in result["restored"]] == [sales] and result["granted"] == []
    (held,) = live(session_factory, org.sales2)
    assert held.valid_until is None
    # No revoke was ever recorded: access stayed continuous.
    assert [a for a, _c, _e in ops(session_factory, org.sales2)] == ["grant"]


def test_a_terminated_identity_gets_nothing(session_factory: sessionmaker[Session], org: Org,
                                            clock: FixedClock) -> None:
    add_rule(session_factory, "sales", eq("department", "Sales"), role_id=org.sales_role)
    result = run(session_factory, clock, org.leaver)
    assert result["granted"] == [] and live(session_factory, org.leaver) == []


def test_organisational_groups_are_read_and_team_groups_are_not(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    platform = add_rule(session_factory, "platform",
                        {"attribute": "groups", "op": "contains", "value": "platform team"},
                        entitlement_id=org.vpn)
    add_rule(session_factory, "oncall", {"attribute": "groups", "op": "contains",
                                         "value": "Oncall"}, entitlement_id=org.eng_ent)
    with session_factory() as session:
        subject = service.subject_of(session, session.get_one(Identity, org.eng1))
    assert subject["groups"] == ["Platform Team"]
    assert subject["department"] == "Engineering" and subject["attributes"] == {}
    assert [r for r, _ in run(session_factory, clock, org.eng1)["granted"]] == [platform]
    assert run(session_factory, clock, org.sales1)["granted"] == []


def test_a_rule_on_an_extra_attribute(session_factory: sessionmaker[Session], org: Org,
                                      clock: FixedClock) -> None:
    secret = add_rule(session_factory, "cleared",
                      {"all": [eq("attributes.clearance", "secret"),
                               {"not": eq("employment_type", "contractor")}]},
                      entitlement_id=org.vpn)
    assert [r for r, _ in run(session_factory, clock, org.sales1)["granted"]] == [secret]
    assert run(session_factory, clock, org.sales2)["granted"] == []


def test_a_disabled_rule_ends_what_it_gave(session_factory: sessionmaker[Session], org: Org,
                                           clock: FixedClock) -> None:
    rule = add_rule(session_factory, "sales", eq("department", "Sales"), role_id=org.sales_role)
    run(session_factory, clock, org.sales1)
    with unit_of_work(session_factory) as session:
        session.get_one(BirthrightRule, rule).enabled = False
    assert [r for r, _ in run(session_factory, clock, org.sales1)["ending"]] == [rule]


def test_a_zero_grace_revokes_at_once(session_factory: sessionmaker[Session], org: Org,
                                      clock: FixedClock) -> None:
    rule = add_rule(session_factory, "sales", eq("department", "Sales"), role_id=org.sales_role)
    run(session_factory, clock, org.sales1)
    move(session_factory, org.sales1, department="Legal")
    result = run(session_factory, clock, org.sales1, grace=timedelta(0))
    assert [r for r, _ in result["revoked"]] == [rule]
    assert live(session_factory, org.sales1) == []


def test_a_prehire_grant_waits_for_the_hire_and_is_cancelled_if_no_longer_matching(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    rule = add_rule(session_factory, "sales", eq("department", "Sales"), role_id=org.sales_role)
    hire = clock.now() + timedelta(days=10)
    move(session_factory, org.sales2, lifecycle_state="prehire")
    run(session_factory, clock, org.sales2, valid_from=hire)
    (held,) = live(session_factory, org.sales2)
    assert held.valid_from == hire
    # Recomputing before the hire does not grant a second time.
    assert run(session_factory, clock, org.sales2)["granted"] == []
    move(session_factory, org.sales2, department="Legal")
    result = run(session_factory, clock, org.sales2)
    assert [r for r, _ in result["revoked"]] == [rule] and result["ending"] == []
    with session_factory() as session:
        states = list(session.scalars(select(ProvisioningOperation.state).where(
            ProvisioningOperation.assignment_id == held.id,
            ProvisioningOperation.action == "grant")))
    assert states == ["cancelled"]


def test_access_held_through_a_request_is_not_granted_twice(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    rule = add_rule(session_factory, "vpn", eq("location", "London"), entitlement_id=org.vpn)
    with unit_of_work(session_factory) as session:
        requested = assignments.grant(session, identity_id=org.sales1, entitlement_id=org.vpn,
                                      source="request", reason="REQ-1", valid_from=None,
                                      valid_until=None, actor=HR, clock=clock)
        timed = assignments.grant(session, identity_id=org.sales2, entitlement_id=org.vpn,
                                  source="request", reason="REQ-2", valid_from=None,
                                  valid_until=clock.now() + timedelta(days=3), actor=HR,
                                  clock=clock)
    # Open-ended: skipped and reported.
    result = run(session_factory, clock, org.sales1)
    assert result["granted"] == [] and result["skipped"] == [(rule, requested.id)]
    # Time-bound: the birthright grant starts where the requested one ends.
    result = run(session_factory, clock, org.sales2)
    assert [r for r, _ in result["granted"]] == [rule]
    starts = [(a.source, a.valid_from) for a in live(session_factory, org.sales2)]
    assert starts == [("request", clock.now()), ("birthright", timed.valid_until)]


def test_a_capped_entitlement_keeps_its_cap_when_restored(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    add_rule(session_factory, "lab", eq("department", "Sales"), entitlement_id=org.capped)
    run(session_factory, clock, org.sales1)
    cap = clock.now() + timedelta(days=90)
    assert live(session_factory, org.sales1)[0].valid_until == cap
    # Matching and capped is not "ending": nothing to restore.
    assert run(session_factory, clock, org.sales1)["restored"] == []
    move(session_factory, org.sales1, department="Legal")
    run(session_factory, clock, org.sales1)
    assert live(session_factory, org.sales1)[0].valid_until == clock.now() + GRACE
    move(session_factory, org.sales1, department="Sales")
    assert len(run(session_factory, clock, org.sales1)["restored"]) == 1
    assert live(session_factory, org.sales1)[0].valid_until == cap


def test_two_rules_giving_the_same_role_hand_over_without_a_gap(
        session_factory: sessionmaker[Session], org: Org, clock: FixedClock) -> None:
    london = add_rule(session_factory, "a-london", eq("location", "London"),
                      role_id=org.sales_role)
    sales = add_rule(session_factory, "b-sales", eq("department", "Sales"),
                     role_id=org.sales_role)
    result = run(session_factory, clock, org.sales1)
    assert [r for r, _ in result["granted"]] == [london]
    assert [r for r, _a in result["skipped"]] == [sales]
    move(session_factory, org.sales1, location="Paris")
    result = run(session_factory, clock, org.sales1)
    assert [r for r, _ in result["ending"]] == [london]
    assert [r for r, _ in result["granted"]] == [sales]
    windows = [(a.birthright_rule_id, a.valid_from, a.valid_until)
               for a in live(session_factory, org.sales1)]
    assert windows == [(london, clock.now(), clock.now() + GRACE),
                       (sales, clock.now() + GRACE, None)]
