"""Opening a line's approvals: who approves each kind of stage, and when nobody can."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idgov.errors import Conflict
from idgov.models.requests import AccessRequest, ApprovalStep, RequestLine
from idgov.policy.decision import ApprovalNeed
from tests.approvals.conftest import Lines, Org

MANAGER = ApprovalNeed(stage=1, kind="manager", reason="Manager approval")
OWNER = ApprovalNeed(stage=2, kind="owner", reason="Owner approval")


def test_first_stage_waits_for_the_beneficiarys_manager_the_others_are_pending(
        lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, OWNER])
    first, second = lines.steps(line_id)
    assert (first.stage, first.kind, first.state, first.label) == (
        1, "manager", "waiting", "Manager approval")
    assert first.activated_at == lines.clock.now()
    assert first.due_at == lines.clock.now() + timedelta(hours=72)
    assert lines.approvers(first.id) == {org.manager: "policy"}
    assert (second.kind, second.state, second.activated_at) == ("owner", "pending", None)
    assert lines.approvers(second.id) == {}
    assert lines.audit(first.id) == ["approval_step.open"]
    assert lines.audit(second.id) == []
    assert lines.notifications("approval.waiting") == [(org.manager, str(first.id))]


def test_no_needs_opens_no_steps(lines: Lines) -> None:
    line_id = lines.open([])
    assert lines.steps(line_id) == []


@pytest.mark.parametrize(("item", "expected"), [
    ("payables", "owner"),  # the entitlement's owner
    ("unowned", "app_owner"),  # no owner: the application's owner
    ("clerk", "owner"),  # the role's owner
])
def test_owner_stage(lines: Lines, org: Org, item: str, expected: str) -> None:
    target = {"entitlement": getattr(org, item)} if item != "clerk" else {"role": org.clerk}
    line_id = lines.open([ApprovalNeed(stage=1, kind="owner", reason="Owner")], **target)
    (step,) = lines.steps(line_id)
    assert lines.approvers(step.id) == {getattr(org, expected): "policy"}


def test_group_stage_resolves_active_members(lines: Lines, org: Org) -> None:
    line_id = lines.open([ApprovalNeed(stage=1, kind="group", reason="Finance team",
                                       group_id=org.dual_group)])
    (step,) = lines.steps(line_id)
    # leaver is terminated: never an approver
    assert lines.approvers(step.id) == {org.dual1: "policy", org.dual2: "policy",
                                        org.dual3: "policy"}


def test_control_owner_stage(lines: Lines, org: Org) -> None:
    line_id = lines.open([ApprovalNeed(stage=1, kind="control_owner", reason="Control owner",
                                       owner_id=org.deputy)])
    (step,) = lines.steps(line_id)
    assert lines.approvers(step.id) == {org.deputy: "policy"}


def test_control_owner_of_a_later_stage_comes_from_the_line(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, ApprovalNeed(stage=2, kind="control_owner", reason="Control",
                                                owner_id=org.deputy)],
                         control_owner=org.deputy)
    lines.decide(lines.step(line_id, 1).id, org.manager)
    assert lines.approvers(lines.step(line_id, 2).id) == {org.deputy: "policy"}


def test_dual_control_with_a_group_needs_two_of_its_members(lines: Lines, org: Org) -> None:
    line_id = lines.open([ApprovalNeed(stage=1, kind="dual_control", reason="Dual control",
                                       required=2, group_id=org.dual_group)],
                         risk="critical", privileged=True)
    (step,) = lines.steps(line_id)
    assert step.required_approvals == 2
    assert set(lines.approvers(step.id)) == {org.dual1, org.dual2, org.dual3}


def test_dual_control_without_a_group(lines: Lines, org: Org) -> None:
    line_id = lines.open([ApprovalNeed(stage=1, kind="dual_control", reason="Dual control",
                                       required=2)], risk="critical", privileged=True)
    (step,) = lines.steps(line_id)
    # item owner, application owner, the beneficiary's manager's manager
    assert set(lines.approvers(step.id)) == {org.owner, org.app_owner, org.director}


def test_requester_is_never_an_approver_the_manager_chain_climbs(lines: Lines, org: Org) -> None:
    # the manager asks for alice: the manager stage goes to the manager's manager
    line_id = lines.open([MANAGER], requester=org.manager, beneficiary=org.alice)
    (step,) = lines.steps(line_id)
    assert lines.approvers(step.id) == {org.director: "policy"}


def test_beneficiary_is_never_an_approver(lines: Lines, org: Org) -> None:
    # the owner asks for their own entitlement: the owner's manager approves
    line_id = lines.open([ApprovalNeed(stage=1, kind="owner", reason="Owner")],
                         beneficiary=org.owner)
    (step,) = lines.steps(line_id)
    assert lines.approvers(step.id) == {org.ceo: "policy"}


def test_group_member_who_is_the_beneficiary_is_removed(lines: Lines, org: Org) -> None:
    line_id = lines.open([ApprovalNeed(stage=1, kind="group", reason="Team",
                                       group_id=org.dual_group)], beneficiary=org.dual1)
    (step,) = lines.steps(line_id)
    assert set(lines.approvers(step.id)) == {org.dual2, org.dual3}


@pytest.mark.parametrize("need", [
    ApprovalNeed(stage=1, kind="group", reason="Nobody", group_id=None),
    ApprovalNeed(stage=1, kind="owner", reason="Owner"),
])
def test_nobody_to_approve_is_a_conflict_and_saves_nothing(lines: Lines, org: Org,
                                                           need: ApprovalNeed) -> None:
    if need.kind == "group":
        need = ApprovalNeed(stage=1, kind="group", reason="Nobody", group_id=org.empty_group)
    with pytest.raises(Conflict, match="no approver can be found"):
        lines.open([need], entitlement=org.orphan)
    assert lines.count(ApprovalStep) == 0
    assert lines.count(RequestLine) == 0
    assert lines.count(AccessRequest) == 0


def test_dual_control_with_one_eligible_person_is_a_conflict(lines: Lines, org: Org) -> None:
    # orphan: no item owner, no application owner; only the director is left
    with pytest.raises(Conflict, match="two distinct approvers"):
        lines.open([ApprovalNeed(stage=1, kind="dual_control", reason="Dual", required=2)],
                   entitlement=org.orphan, risk="critical")
    assert lines.count(ApprovalStep) == 0


def test_a_conflict_at_a_later_stage_refuses_the_decision(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, ApprovalNeed(stage=2, kind="group", reason="Empty",
                                                group_id=org.empty_group)])
    first = lines.step(line_id, 1)
    with pytest.raises(Conflict, match="no approver can be found"):
        lines.decide(first.id, org.manager)
    assert lines.step(line_id, 1).state == "waiting"
    assert lines.approvals(first.id) == []
