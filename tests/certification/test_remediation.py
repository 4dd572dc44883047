"""Closed loop: a certify records the certification, a revoke ends the assignment through
the core and is confirmed only when reconciliation reads the access gone; failures stay
visible; protected access escalates instead of being removed."""

from __future__ import annotations

import uuid

from certification.models import ReviewItem
from certification.remediation import apply_decisions
from connectors.errors import DataError
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement
from idgov.provisioning import service as provisioning
from tests.certification.loop_world import ACTOR, Loop, loop_fixture

__all__ = ["loop_fixture"]


def test_sign_off_certifies_and_revokes_through_the_core(loop: Loop) -> None:
    keep, drop = loop.grant("Alice", "VPN"), loop.grant("Alice", "ERP-Read")
    campaign = loop.campaign()
    kept = loop.item(campaign, keep, decision="certify")
    dropped = loop.item(campaign, drop, decision="revoke", comment="left Finance")

    counts = loop.sign_off(campaign)

    assert counts == {"certified": 1, "requested": 1, "escalated": 0}
    certified = loop.get(Assignment, keep)
    assert (certified.last_certified_at, certified.last_certified_by) == (
        loop.clock.now(), "identity:Mia")
    ended = loop.get(Assignment, drop)
    assert ended.revoked_at == loop.clock.now()
    assert ended.revoke_reason == "certification: Q1 access review"
    assert [(o.action, o.state, o.entitlement_id) for o in loop.revoke_ops(drop)] == [
        ("revoke", "pending", loop.ent("ERP-Read"))]
    assert loop.remediation_of(dropped) == "requested"
    assert loop.remediation_of(kept) == "none"
    assert "review_item.remediate" in loop.actions(dropped)
    # applying again changes nothing: each item takes effect once
    with unit_of_work(loop.factory) as session:
        again = apply_decisions(session, campaign_id=campaign, reviewer_id=loop.ids["Mia"],
                                actor=ACTOR, clock=loop.clock)
    assert again == {"certified": 0, "requested": 0, "escalated": 0}
    assert loop.actions(drop).count("assignment.revoke") == 1


def test_a_revoke_is_confirmed_only_after_reconciliation_reads_the_access_gone(
        loop: Loop) -> None:
    assignment = loop.grant("Bob", "ERP-Post")
    loop.provision()
    assert len(loop.members_of("ERP-Post")) == 1
    campaign = loop.campaign()
    item = loop.item(campaign, assignment, decision="revoke")
    loop.sign_off(campaign)
    stale = loop.reconcile()  # before the removal ran: the run cannot confirm anything

    assert loop.verify() == 0
    assert loop.remediation_of(item) == "requested"
    loop.provision()
    assert loop.members_of("ERP-Post") == set()
    assert [o.state for o in loop.revoke_ops(assignment)] == ["succeeded"]
    assert loop.verify() == 0  # no reconciliation since the operation completed
    assert loop.remediation_of(item) == "requested"

    run = loop.reconcile()
    assert run.id != stale.id
    assert loop.verify(campaign) == 1

    done = loop.get(ReviewItem, item)
    assert done.remediation == "confirmed"
    assert done.context["remediation"]["runs"] == [str(run.id)]
    assert loop.actions(item).count("review_item.remediate") == 2


def test_a_failed_removal_marks_the_item_failed_and_a_retry_recovers_it(loop: Loop) -> None:
    assignment = loop.grant("Carol", "VPN")
    loop.provision()
    campaign = loop.campaign()
    item = loop.item(campaign, assignment, decision="revoke")
    loop.sign_off(campaign)
    loop.env.target.fail_next(DataError("no such member"))
    loop.provision()
    [op] = loop.revoke_ops(assignment)
    assert op.state == "failed"

    assert loop.verify() == 1
    assert loop.remediation_of(item) == "failed"
    assert loop.verify() == 0  # stays failed and visible

    with unit_of_work(loop.factory) as session:
        provisioning.retry_operation(session, operation_id=op.id, actor=ACTOR,
                                     clock=loop.clock)
    loop.provision()
    loop.reconcile()
    assert loop.verify() == 1
    assert loop.remediation_of(item) == "confirmed"


def test_access_put_back_on_the_target_is_not_confirmed(loop: Loop) -> None:
    assignment = loop.grant("Alice", "ERP-Read")
    loop.provision()
    account = loop.env.account_of("Alice")
    campaign = loop.campaign()
    item = loop.item(campaign, assignment, decision="revoke")
    loop.sign_off(campaign)
    loop.provision()
    loop.env.target.add_member("cn=ERP-Read", account)  # someone adds it back by hand
    loop.reconcile()

    loop.verify()

    assert loop.remediation_of(item) == "failed"


def test_a_role_assignment_is_confirmed_over_every_entitlement_of_the_role(
        loop: Loop) -> None:
    role = loop.env.api.role("Finance clerk")
    for name in ("ERP-Read", "ERP-Post"):
        loop.env.api.ok("POST", f"/roles/{role}/entitlements", 201,
                        json={"entitlement_id": loop.env.ent[name]})
    assignment = loop.grant("Bob", role_id=uuid.UUID(role))
    loop.provision()
    campaign = loop.campaign()
    item = loop.item(campaign, assignment, decision="revoke")
    loop.sign_off(campaign)
    assert {o.entitlement_id for o in loop.revoke_ops(assignment)} == {
        loop.ent("ERP-Read"), loop.ent("ERP-Post")}
    loop.provision()
    loop.reconcile()

    assert loop.verify() == 1
    assert loop.remediation_of(item) == "confirmed"
    assert loop.members_of("ERP-Read") == loop.members_of("ERP-Post") == set()


def test_the_owner_holding_privileged_access_is_escalated_not_revoked(loop: Loop) -> None:
    loop.update(Entitlement, loop.ent("ERP-Post"), privileged=True)
    loop.update(Application, loop.application_id, owner_id=loop.ids["Alice"])
    owner = loop.grant("Alice", "ERP-Post")
    other = loop.grant("Bob", "ERP-Post")
    campaign = loop.campaign()
    protected = loop.item(campaign, owner, decision="revoke")
    plain = loop.item(campaign, other, decision="revoke")

    counts = loop.sign_off(campaign)

    assert counts == {"certified": 0, "requested": 1, "escalated": 1}
    assert loop.get(Assignment, owner).revoked_at is None
    assert loop.remediation_of(protected) == "escalated"
    assert loop.remediation_of(plain) == "requested"
    assert loop.revoke_ops(owner) == []
    [note] = loop.notes("Ada", "certification.escalated")  # no fallback group: admins
    assert "owner of" in note.body


def test_the_last_holder_of_a_privileged_entitlement_is_escalated(loop: Loop) -> None:
    loop.update(Entitlement, loop.ent("ERP-Post"), privileged=True)
    group = loop.group("Certification fallback", "Boss")
    first, second = loop.grant("Alice", "ERP-Post"), loop.grant("Bob", "ERP-Post")
    campaign = loop.campaign(fallback_group_id=group)
    one = loop.item(campaign, first, decision="revoke")
    two = loop.item(campaign, second, decision="revoke")

    loop.sign_off(campaign)

    # the first removal leaves one holder: the second is the last administrator
    assert sorted([loop.remediation_of(one), loop.remediation_of(two)]) == [
        "escalated", "requested"]
    live = [a for a in (first, second) if loop.get(Assignment, a).revoked_at is None]
    assert len(live) == 1
    assert len(loop.notes("Boss", "certification.escalated")) == 1
    assert loop.notes("Ada", "certification.escalated") == []


def test_a_break_glass_account_is_escalated(loop: Loop) -> None:
    assignment = loop.grant("Carol", "VPN")
    loop.provision()
    loop.mark_account("Carol", break_glass=True)
    campaign = loop.campaign()
    item = loop.item(campaign, assignment, decision="revoke")

    loop.sign_off(campaign)

    assert loop.remediation_of(item) == "escalated"
    assert loop.get(Assignment, assignment).revoked_at is None


def test_closing_applies_the_deadline_policy_and_spares_protected_access(loop: Loop) -> None:
    loop.update(Entitlement, loop.ent("ERP-Post"), privileged=True)
    admin = loop.grant("Alice", "ERP-Post")   # the only holder: the last administrator
    plain = loop.grant("Bob", "VPN")
    decided = loop.grant("Carol", "VPN")
    campaign = loop.campaign(deadline_action="revoke")
    spared = loop.item(campaign, admin)
    revoked = loop.item(campaign, plain)
    certified = loop.item(campaign, decided, reviewer="Boss", decision="certify")

    closed = loop.close(campaign)

    assert closed.state == "closed" and closed.closed_at == loop.clock.now()
    assert closed.counts["at_close"] == {"certified": 1, "requested": 1, "escalated": 1,
                                         "undecided": 2, "deadline_action": "revoke"}
    assert loop.remediation_of(spared) == "escalated"
    assert loop.get(Assignment, admin).revoked_at is None
    auto = loop.get(ReviewItem, revoked)
    assert (auto.decision, auto.remediation) == ("revoke", "requested")
    assert loop.get(Assignment, plain).revoked_at == loop.clock.now()
    assert loop.get(Assignment, decided).last_certified_by == "identity:Boss"
    assert loop.remediation_of(certified) == "none"
    assert "campaign.close" in loop.actions(campaign)


def test_keep_and_escalate_at_the_deadline_remove_nothing(loop: Loop) -> None:
    first, second = loop.grant("Alice", "VPN"), loop.grant("Bob", "VPN")
    keep = loop.campaign("Keep", deadline_action="keep")
    escalate = loop.campaign("Escalate", deadline_action="escalate")
    kept = loop.item(keep, first)
    escalated = loop.item(escalate, second)

    loop.close(keep)
    loop.close(escalate)

    assert loop.remediation_of(kept) == "none"
    assert loop.remediation_of(escalated) == "escalated"
    assert loop.get(Assignment, first).revoked_at is None
    assert loop.get(Assignment, second).revoked_at is None
    assert len(loop.notes("Ada", "certification.escalated")) == 1
