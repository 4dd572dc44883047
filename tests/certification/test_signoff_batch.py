"""Sign-off in batches: the set-based core services have exactly the effects of their
one-by-one counterparts, and a big sign-off applies everything with a bounded number of
SQL statements."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.orm import Session

from certification import remediation, review
from certification.models import Campaign, ReviewerSignoff, ReviewItem
from certification.protection import protection_reason
from idgov.assignments import service as assignments
from idgov.auth.caller import Caller
from idgov.db.session import unit_of_work
from idgov.errors import Conflict, InvalidInput, NotFound
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.types import Actor
from tests.certification.loop_world import ACTOR, Loop, loop_fixture

__all__ = ["loop_fixture"]

Effects = dict[str, Any]


def _effects(loop: Loop, run: Callable[[Session], None]) -> Effects:
    """Run ``run`` in a transaction that is rolled back, and return what it changed:
    assignments, operations and audit events, with operation ids replaced by their
    idempotency keys (ids and ordinals differ between two runs, nothing else may)."""
    session = loop.factory()
    try:
        known = set(session.scalars(select(AuditEvent.id)))
        ops_before = set(session.scalars(select(ProvisioningOperation.id)))
        run(session)
        session.flush()
        ops = list(session.scalars(select(ProvisioningOperation)))
        key_of = {str(o.id): o.idempotency_key for o in ops}

        def norm(values: dict[str, Any] | None) -> str:
            found = dict(values or {})
            found.pop("ordinal", None)
            if "id" in found:
                found["id"] = key_of.get(found["id"], found["id"])
            return json.dumps(found, sort_keys=True)

        events = sorted(
            (e.action, e.object_type, key_of.get(str(e.object_id), e.object_id),
             e.actor_name, norm(e.before), norm(e.after), norm(e.context))
            for e in session.scalars(select(AuditEvent)) if e.id not in known
            and e.object_type in ("assignment", "provisioning_operation"))
        new_ops = sorted((o for o in ops if o.id not in ops_before),
                         key=lambda o: o.ordinal)
        changed_ops = sorted(
            (o.idempotency_key, str(o.identity_id), str(o.application_id),
             str(o.entitlement_id), o.action, o.state, o.cause, o.cause_id,
             str(o.assignment_id), str(o.request_line_id), json.dumps(o.detail),
             str(o.next_attempt_at), str(o.completed_at))
            for o in ops if o.id not in ops_before or o.state == "cancelled")
        rows = sorted((str(a.id), str(a.revoked_at), a.revoked_by, a.revoke_reason,
                       str(a.last_certified_at), a.last_certified_by)
                      for a in session.scalars(select(Assignment)))
        return {"assignments": rows, "operations": changed_ops,
                "order": [o.idempotency_key for o in new_ops], "events": events}
    finally:
        session.rollback()
        session.close()


def _role(loop: Loop, name: str, *entitlements: str) -> uuid.UUID:
    role = loop.env.api.role(name)
    for entitlement in entitlements:
        loop.env.api.ok("POST", f"/roles/{role}/entitlements", 201,
                        json={"entitlement_id": loop.env.ent[entitlement]})
    return uuid.UUID(role)


def _later(loop: Loop, person: str, entitlement: str) -> uuid.UUID:
    """A grant that starts in ten days (its grant operation waits, pending)."""
    with unit_of_work(loop.factory) as session:
        return assignments.grant(
            session, identity_id=loop.ids[person], entitlement_id=loop.ent(entitlement),
            source="admin", reason="test", valid_from=loop.clock.now() + timedelta(days=10),
            valid_until=None, actor=ACTOR, clock=loop.clock).id


def test_revoke_many_has_the_effects_of_revoking_one_by_one(loop: Loop) -> None:
    clerk = _role(loop, "Finance clerk", "ERP-Read", "ERP-Post")
    a = {"alice_role": loop.grant("Alice", role_id=clerk),
         "alice_read": loop.grant("Alice", "ERP-Read"),
         "alice_vpn": loop.grant("Alice", "VPN"),
         "bob_post": loop.grant("Bob", "ERP-Post"),
         "bob_role": loop.grant("Bob", role_id=clerk),
         "carol_vpn": loop.grant("Carol", "VPN"),
         "carol_later": _later(loop, "Carol", "ERP-Read")}
    # alice_read first: the role (later in the list) still gives ERP-Read then
    order = [a[k] for k in ("alice_read", "alice_role", "bob_post", "carol_later",
                            "alice_vpn")]
    reason = "certification: Q1"

    def one_by_one(session: Session) -> None:
        for assignment_id in order:
            assignments.revoke(session, assignment_id=assignment_id, reason=reason,
                               actor=ACTOR, clock=loop.clock)

    def batched(session: Session) -> None:
        ended = assignments.revoke_many(session, assignment_ids=order, reason=reason,
                                        actor=ACTOR, clock=loop.clock)
        assert [x.id for x in ended] == order

    single, many = _effects(loop, one_by_one), _effects(loop, batched)

    assert many == single
    name = {v: k for k, v in a.items()}
    ent = {loop.ent(n): n for n in ("VPN", "ERP-Read", "ERP-Post")}
    revokes = {(name[uuid.UUID(op[7])], ent[uuid.UUID(op[3])]) for op in many["operations"]
               if op[4] == "revoke"}
    assert revokes == {("alice_role", "ERP-Read"), ("alice_role", "ERP-Post"),
                       ("alice_vpn", "VPN")}
    cancelled = [(name[uuid.UUID(op[8])], op[4]) for op in many["operations"]
                 if op[5] == "cancelled"]
    assert cancelled == [("carol_later", "grant")]
    actions = [e[0] for e in many["events"]]
    assert (actions.count("assignment.revoke"), actions.count("provisioning.record"),
            actions.count("provisioning.cancel")) == (5, 3, 1)


def test_revoke_many_checks_everything_before_changing_anything(loop: Loop) -> None:
    live, gone = loop.grant("Alice", "VPN"), loop.grant("Bob", "VPN")
    with unit_of_work(loop.factory) as session:
        assignments.revoke(session, assignment_id=gone, reason="x", actor=ACTOR,
                           clock=loop.clock)
    cases: list[tuple[list[uuid.UUID], str, type[Exception]]] = [
        ([live, gone], "why", Conflict), ([live, live], "why", Conflict),
        ([live, uuid.uuid4()], "why", NotFound), ([live], "  ", InvalidInput)]
    for ids, reason, error in cases:
        with pytest.raises(error), unit_of_work(loop.factory) as session:
            assignments.revoke_many(session, assignment_ids=ids, reason=reason,
                                    actor=ACTOR, clock=loop.clock)
    assert loop.get(Assignment, live).revoked_at is None
    assert loop.revoke_ops(live) == []


def test_set_last_certified_many_has_the_effects_of_certifying_one_by_one(
        loop: Loop) -> None:
    items = [(loop.grant("Alice", "VPN"), "identity:Mia"),
             (loop.grant("Bob", "VPN"), "identity:Mia"),
             (loop.grant("Carol", "ERP-Read"), "identity:Boss")]
    at = loop.clock.now() - timedelta(hours=1)

    def one_by_one(session: Session) -> None:
        for assignment_id, by in items:
            assignments.set_last_certified(session, assignment_id=assignment_id, at=at, by=by,
                                           actor=ACTOR, clock=loop.clock)

    def batched(session: Session) -> None:
        assert assignments.set_last_certified_many(session, items=items, at=at, actor=ACTOR,
                                                   clock=loop.clock) == 3

    single, many = _effects(loop, one_by_one), _effects(loop, batched)

    assert many == single
    assert [e[0] for e in many["events"]] == ["assignment.certify"] * 3
    certified = {(r[0], r[5]) for r in many["assignments"] if r[5] is not None}
    assert certified == {(str(i), by) for i, by in items}


def _sorted_items(loop: Loop, campaign: uuid.UUID) -> list[ReviewItem]:
    with loop.factory() as session:
        found = list(session.scalars(select(ReviewItem).where(
            ReviewItem.campaign_id == campaign).order_by(ReviewItem.id)))
        session.expunge_all()
        return found


def test_a_sign_off_has_the_effects_of_applying_its_items_one_by_one(loop: Loop) -> None:
    loop.update(Entitlement, loop.ent("ERP-Post"), privileged=True)
    loop.update(Entitlement, loop.ent("ERP-Read"), privileged=True)
    loop.update(Application, loop.application_id, owner_id=loop.ids["Alice"])
    reader = _role(loop, "Reader", "ERP-Read")
    gone = loop.grant("Bob", "VPN")
    with unit_of_work(loop.factory) as session:
        assignments.revoke(session, assignment_id=gone, reason="left", actor=ACTOR,
                           clock=loop.clock)
    campaign = loop.campaign()
    plan = [("alice_vpn", loop.grant("Alice", "VPN"), "certify"),
            ("alice_post", loop.grant("Alice", "ERP-Post"), "revoke"),
            ("bob_post", loop.grant("Bob", "ERP-Post"), "revoke"),
            ("bob_read", loop.grant("Bob", "ERP-Read"), "revoke"),
            ("bob_vpn", gone, "revoke"),
            ("carol_role", loop.grant("Carol", role_id=reader), "certify"),
            ("carol_read", loop.grant("Carol", "ERP-Read"), "revoke"),
            ("carol_vpn", loop.grant("Carol", "VPN"), "certify")]
    item = {key: loop.item(campaign, assignment_id, decision=decision)
            for key, assignment_id, decision in plan}
    actor = Actor.for_identity(loop.ids["Mia"], "Mia")
    now = loop.clock.now()

    def one_by_one(session: Session) -> None:  # the rule, item after item, in id order
        for row in _sorted_items(loop, campaign):
            found = session.get(Assignment, row.assignment_id)
            assert found is not None
            if row.decision == "certify":
                assignments.set_last_certified(session, assignment_id=found.id, at=now,
                                               by=str(row.decided_by), actor=actor,
                                               clock=loop.clock)
            elif found.revoked_at is None and protection_reason(
                    session, assignment=found, at=now) is None:
                assignments.revoke(session, assignment_id=found.id,
                                   reason="certification: Q1 access review", actor=actor,
                                   clock=loop.clock)

    def signed_off(session: Session) -> None:
        session.add(ReviewerSignoff(campaign_id=campaign, reviewer_id=loop.ids["Mia"],
                                    signed_off_at=now))
        counts = remediation.apply_decisions(session, campaign_id=campaign,
                                             reviewer_id=loop.ids["Mia"], actor=actor,
                                             clock=loop.clock)
        assert counts == {"certified": 3, "requested": 4, "escalated": 1}
        rows = {r.id: r for r in session.scalars(select(ReviewItem).where(
            ReviewItem.campaign_id == campaign))}
        outcome = {key: (rows[i].remediation,
                         (rows[i].context or {}).get("remediation", {}).get("note"))
                   for key, i in item.items()}
        assert outcome == {
            "alice_vpn": ("none", None),
            "alice_post": ("escalated", None),   # the application's owner
            "bob_post": ("requested", None),
            "bob_read": ("requested", None),     # Carol still holds it
            "bob_vpn": ("requested", "the assignment had already ended"),
            "carol_role": ("none", None),
            "carol_read": ("requested", None),   # her role still gives it: no operation
            "carol_vpn": ("none", None)}

    single, many = _effects(loop, one_by_one), _effects(loop, signed_off)

    assert many == single
    ents = {str(loop.ent(n)): n for n in ("VPN", "ERP-Read", "ERP-Post")}
    people = {str(v): k for k, v in loop.ids.items()}
    assert sorted((people[op[1]], ents[op[3]]) for op in many["operations"]) == [
        ("Bob", "ERP-Post"), ("Bob", "ERP-Read")]


def test_two_last_holders_in_one_chunk_first_goes_second_escalates(loop: Loop) -> None:
    loop.update(Entitlement, loop.ent("ERP-Post"), privileged=True)
    campaign = loop.campaign()
    grants = {p: loop.grant(p, "ERP-Post") for p in ("Alice", "Bob", "Carol")}
    items = {p: loop.item(campaign, g, decision="revoke") for p, g in grants.items()}

    counts = loop.sign_off(campaign)

    assert counts == {"certified": 0, "requested": 2, "escalated": 1}
    last = max(items.values(), key=str)
    assert loop.remediation_of(last) == "escalated"  # judged last, in id order
    assert sorted(loop.remediation_of(i) for i in items.values()) == [
        "escalated", "requested", "requested"]
    assert sum(loop.get(Assignment, g).revoked_at is None for g in grants.values()) == 1


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _big_campaign(loop: Loop, people: int, per_person: int) -> uuid.UUID:
    """``people`` reports of Mia holding ``per_person`` entitlements each, every item of
    the campaign decided by Mia: one in ten revoked, the rest certified."""
    now = loop.clock.now()
    with unit_of_work(loop.factory) as session:
        ents = [Entitlement(application_id=loop.application_id, kind="group",
                            native_id=f"cn=bulk{n}", name=f"BULK-{n:02d}", risk="low")
                for n in range(per_person)]
        persons = [Identity(employee_id=f"B{n:05d}", given_name="Bulk", family_name=str(n),
                            display_name=f"Bulk {n}", manager_id=loop.ids["Mia"])
                   for n in range(people)]
        session.add_all([*ents, *persons])
        session.flush()
        grants = [{"id": uuid.uuid4(), "identity_id": p.id, "role_id": None,
                   "entitlement_id": e.id, "source": "admin", "granted_by": "tests",
                   "valid_from": now - timedelta(days=30), "created_at": now,
                   "updated_at": now} for p in persons for e in ents]
        session.execute(insert(Assignment), grants)
    campaign = loop.campaign("Big review")
    rows: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "campaign_id": campaign, "assignment_id": g["id"],
         "identity_id": g["identity_id"], "role_id": None,
         "entitlement_id": g["entitlement_id"], "application_id": loop.application_id,
         "source": "admin", "risk": "low", "privileged": False, "sod_conflict": False,
         "reviewer_id": loop.ids["Mia"], "decision": "revoke" if n % 10 == 0 else "certify",
         "decided_at": now, "decided_by": "identity:Mia", "remediation": "none",
         "context": {}, "created_at": now}
        for n, g in enumerate(grants)]
    with unit_of_work(loop.factory) as session:
        session.execute(insert(ReviewItem), rows)
    return campaign


def test_a_big_sign_off_applies_everything_with_a_bounded_number_of_statements(
        loop: Loop, engine: Engine) -> None:
    campaign = _big_campaign(loop, people=200, per_person=10)
    mia = Caller.build(kind="oidc", name="Mia", roles=frozenset({"manager"}),
                       identity_id=loop.ids["Mia"])

    with loop.factory() as session:
        mark = session.scalar(select(func.max(AuditEvent.seq))) or 0
    with _statements(engine) as seen, unit_of_work(loop.factory) as session:
        outcome = review.sign_off_outcome(session, campaign_id=campaign, caller=mia,
                                          clock=loop.clock)

    assert outcome.applied == {"certified": 1800, "requested": 200, "escalated": 0}
    assert outcome.campaign_state == "closed"
    # about 30 statements per chunk of 500 items and a few for the sign-off and the close;
    # one by one it took several per item (thousands here)
    assert len(seen) <= 150, f"{len(seen)} statements for 2,000 items"
    with loop.factory() as session:
        items = list(session.scalars(select(ReviewItem).where(
            ReviewItem.campaign_id == campaign)))
        grants = {a.id: a for a in session.scalars(select(Assignment).where(
            Assignment.id.in_([i.assignment_id for i in items])))}
        assert all(i.remediated_at == loop.clock.now() for i in items)
        revoked = {i.assignment_id for i in items
                   if i.decision == "revoke" and i.assignment_id is not None}
        assert {i.remediation for i in items if i.decision == "revoke"} == {"requested"}
        assert all(grants[i].revoked_at == loop.clock.now() for i in revoked)
        kept = [grants[i.assignment_id] for i in items
                if i.decision == "certify" and i.assignment_id is not None]
        assert {(a.revoked_at, a.last_certified_at, a.last_certified_by) for a in kept} == {
            (None, loop.clock.now(), "identity:Mia")}
        ops = list(session.scalars(select(ProvisioningOperation).where(
            ProvisioningOperation.assignment_id.in_(list(revoked)))))
        assert sorted((o.action, o.state) for o in ops) == [("revoke", "pending")] * 200
        assert {o.assignment_id for o in ops} == revoked
        actions: dict[str, int] = {}
        for action in session.scalars(select(AuditEvent.action).where(AuditEvent.seq > mark)):
            actions[action] = actions.get(action, 0) + 1
        assert {k: actions.get(k, 0) for k in (
            "assignment.certify", "assignment.revoke", "provisioning.record",
            "review_item.remediate", "review.sign_off", "campaign.close")} == {
            "assignment.certify": 1800, "assignment.revoke": 200,
            "provisioning.record": 200, "review_item.remediate": 200,
            "review.sign_off": 1, "campaign.close": 1}
        closed = session.get(Campaign, campaign)
        assert closed is not None and closed.state == "closed"
