"""Recording decisions: modes, dual control, rejection, refusals, delegation, authority."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.approvals import service
from idgov.db.session import unit_of_work
from idgov.errors import Conflict, Forbidden, InvalidInput, NotFound
from idgov.models.requests import Approval, ApprovalAuthority, Delegation
from idgov.policy.decision import ApprovalNeed
from tests.approvals.conftest import SYSTEM, Lines, Org

MANAGER = ApprovalNeed(stage=1, kind="manager", reason="Manager approval")
OWNER = ApprovalNeed(stage=2, kind="owner", reason="Owner approval")


def _group(org: Org, mode: str, stage: int = 1) -> ApprovalNeed:
    return ApprovalNeed(stage=stage, kind="group", reason="Team", group_id=org.dual_group,
                        mode=mode)  # type: ignore[arg-type]


def _dual(org: Org, stage: int) -> ApprovalNeed:
    return ApprovalNeed(stage=stage, kind="dual_control", reason="Dual control", required=2,
                        group_id=org.dual_group)


def _delegate(factory: sessionmaker[Session], *, delegator: uuid.UUID, delegate: uuid.UUID,
              starts: timedelta, ends: timedelta, lines: Lines, max_risk: str = "medium",
              revoked: bool = False) -> None:
    now = lines.clock.now()
    with unit_of_work(factory) as session:
        session.add(Delegation(delegator_id=delegator, delegate_id=delegate,
                               starts_at=now + starts, ends_at=now + ends, max_risk=max_risk,
                               revoked_at=now if revoked else None))


def _authority(factory: sessionmaker[Session], who: uuid.UUID, max_risk: str) -> None:
    with unit_of_work(factory) as session:
        session.add(ApprovalAuthority(identity_id=who, max_risk=max_risk, granted_by="tests"))


def test_stages_run_in_order_until_the_line_is_approved(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, OWNER])
    first = lines.step(line_id, 1)
    outcome = lines.decide(first.id, org.manager, comment="fine")
    assert (outcome.line_id, outcome.status, outcome.step.state) == (line_id, "waiting",
                                                                     "approved")
    assert (outcome.approval.approver_id, outcome.approval.decision,
            outcome.approval.comment) == (org.manager, "approve", "fine")
    second = lines.step(line_id, 2)
    assert second.state == "waiting"
    assert lines.approvers(second.id) == {org.owner: "policy"}
    assert (org.owner, str(second.id)) in lines.notifications("approval.waiting")
    outcome = lines.decide(second.id, org.owner)
    assert outcome.status == "approved"
    assert [s.state for s in lines.steps(line_id)] == ["approved", "approved"]
    assert lines.audit(first.id) == ["approval_step.open", "approval.decide"]
    assert lines.audit(second.id) == ["approval_step.open", "approval.decide"]


def test_mode_any_one_member_approves_the_stage(lines: Lines, org: Org) -> None:
    line_id = lines.open([_group(org, "any")])
    step = lines.step(line_id, 1)
    assert step.required_approvals == 1
    assert lines.decide(step.id, org.dual2).status == "approved"


def test_mode_all_every_member_must_approve(lines: Lines, org: Org) -> None:
    line_id = lines.open([_group(org, "all")])
    step = lines.step(line_id, 1)
    assert step.required_approvals == 3
    assert lines.decide(step.id, org.dual1).status == "waiting"
    assert lines.decide(step.id, org.dual2).status == "waiting"
    assert lines.step(line_id, 1).state == "waiting"
    assert lines.decide(step.id, org.dual3).status == "approved"


def test_dual_control_needs_two_distinct_people(lines: Lines, org: Org) -> None:
    line_id = lines.open([_group(org, "any"), _dual(org, 2)], risk="critical", privileged=True)
    lines.decide(lines.step(line_id, 1).id, org.dual1)
    dual = lines.step(line_id, 2)
    # a person who approved an earlier stage may approve the dual-control stage
    assert lines.decide(dual.id, org.dual1).status == "waiting"
    with pytest.raises(Conflict, match="already decided"):
        lines.decide(dual.id, org.dual1)
    assert len(lines.approvals(dual.id)) == 1
    assert lines.decide(dual.id, org.dual2).status == "approved"
    assert {a.approver_id for a in lines.approvals(dual.id)} == {org.dual1, org.dual2}


def test_rejection_needs_a_comment_and_changes_nothing_without(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, OWNER])
    first = lines.step(line_id, 1)
    for comment in (None, "", "   "):
        with pytest.raises(InvalidInput) as err:
            lines.decide(first.id, org.manager, "reject", comment)
        assert [e.field for e in err.value.errors] == ["comment"]
    assert lines.approvals(first.id) == []
    assert lines.step(line_id, 1).state == "waiting"


def test_rejection_rejects_the_line_and_cancels_the_remaining_steps(lines: Lines,
                                                                    org: Org) -> None:
    line_id = lines.open([MANAGER, OWNER, _dual(org, 3)])
    first = lines.step(line_id, 1)
    outcome = lines.decide(first.id, org.manager, "reject", "not needed for this role")
    assert outcome.status == "rejected"
    assert outcome.approval.comment == "not needed for this role"
    assert [s.state for s in lines.steps(line_id)] == ["rejected", "cancelled", "cancelled"]
    assert lines.audit(lines.step(line_id, 2).id) == ["approval_step.cancel"]


def test_unknown_decision_is_refused(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER])
    with pytest.raises(InvalidInput):
        lines.decide(lines.step(line_id, 1).id, org.manager, "maybe")


def test_refusals_change_nothing(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, OWNER])
    first, second = lines.steps(line_id)
    with pytest.raises(NotFound):
        lines.decide(uuid.uuid4(), org.manager)
    with pytest.raises(Forbidden):  # not an approver of the step
        lines.decide(first.id, org.outsider)
    with pytest.raises(Forbidden):  # the beneficiary
        lines.decide(first.id, org.alice)
    with pytest.raises(Conflict, match="pending"):  # a stage that has not started
        lines.decide(second.id, org.owner)
    lines.decide(first.id, org.manager)
    with pytest.raises(Conflict, match="approved"):  # deciding twice
        lines.decide(first.id, org.manager)
    with pytest.raises(Conflict, match="approved"):
        lines.decide(first.id, org.manager, "reject", "changed my mind")
    assert [a.decision for a in lines.approvals(first.id)] == ["approve"]
    assert lines.count(Approval) == 1


def test_a_cancelled_line_takes_no_decision(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER])
    step = lines.step(line_id, 1)
    lines.set_line_state(line_id, "cancelled")
    with pytest.raises(Conflict, match="cancelled"):
        lines.decide(step.id, org.manager)
    assert lines.approvals(step.id) == []


def test_cancel_open_steps(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, OWNER])
    with unit_of_work(lines.factory) as session:
        service.cancel_open_steps(session, line_id=line_id, actor=SYSTEM, clock=lines.clock)
    assert [s.state for s in lines.steps(line_id)] == ["cancelled", "cancelled"]
    with pytest.raises(Conflict, match="cancelled"):
        lines.decide(lines.step(line_id, 1).id, org.manager)


# Delegation ---------------------------------------------------------------------------------


def test_delegate_decides_on_behalf_of_the_approver(lines: Lines, org: Org,
                                                   session_factory: sessionmaker[Session]
                                                   ) -> None:
    _delegate(session_factory, delegator=org.manager, delegate=org.deputy,
              starts=timedelta(hours=-1), ends=timedelta(days=7), lines=lines)
    line_id = lines.open([MANAGER, OWNER])
    first = lines.step(line_id, 1)
    outcome = lines.decide(first.id, org.deputy)
    assert (outcome.approval.approver_id, outcome.approval.on_behalf_of_id) == (org.deputy,
                                                                               org.manager)
    assert outcome.step.state == "approved"
    # the delegator cannot decide again what the delegate decided for them
    with pytest.raises(Conflict):
        lines.decide(first.id, org.manager)


def test_delegate_for_an_all_mode_stage_covers_only_the_delegator(
        lines: Lines, org: Org, session_factory: sessionmaker[Session]) -> None:
    _delegate(session_factory, delegator=org.dual1, delegate=org.deputy,
              starts=timedelta(0), ends=timedelta(days=1), lines=lines)
    line_id = lines.open([_group(org, "all")])
    step = lines.step(line_id, 1)
    lines.decide(step.id, org.deputy)
    with pytest.raises(Conflict):
        lines.decide(step.id, org.dual1)
    lines.decide(step.id, org.dual2)
    assert lines.decide(step.id, org.dual3).status == "approved"


@pytest.mark.parametrize(("starts", "ends", "max_risk", "revoked", "risk"), [
    (timedelta(hours=1), timedelta(days=2), "medium", False, "medium"),  # not started yet
    (timedelta(days=-5), timedelta(0), "medium", False, "medium"),  # already ended
    (timedelta(hours=-1), timedelta(days=2), "medium", True, "medium"),  # revoked
    (timedelta(hours=-1), timedelta(days=2), "medium", False, "high"),  # above its ceiling
])
def test_delegation_out_of_force_or_above_its_ceiling_gives_no_right(
        lines: Lines, org: Org, session_factory: sessionmaker[Session], starts: timedelta,
        ends: timedelta, max_risk: str, revoked: bool, risk: str) -> None:
    _delegate(session_factory, delegator=org.manager, delegate=org.deputy, starts=starts,
              ends=ends, max_risk=max_risk, revoked=revoked, lines=lines)
    line_id = lines.open([MANAGER], risk=risk)
    with pytest.raises(Forbidden):
        lines.decide(lines.step(line_id, 1).id, org.deputy)
    assert lines.count(Approval) == 0


def test_delegation_window_follows_the_clock(lines: Lines, org: Org,
                                             session_factory: sessionmaker[Session]) -> None:
    _delegate(session_factory, delegator=org.manager, delegate=org.deputy,
              starts=timedelta(days=1), ends=timedelta(days=2), lines=lines)
    line_id = lines.open([MANAGER])
    step = lines.step(line_id, 1)
    with pytest.raises(Forbidden):
        lines.decide(step.id, org.deputy)
    lines.clock.advance(timedelta(days=1))
    assert lines.decide(step.id, org.deputy).approval.on_behalf_of_id == org.manager


def test_requester_or_beneficiary_cannot_decide_through_a_delegation(
        lines: Lines, org: Org, session_factory: sessionmaker[Session]) -> None:
    _delegate(session_factory, delegator=org.manager, delegate=org.alice,
              starts=timedelta(hours=-1), ends=timedelta(days=2), lines=lines)
    _delegate(session_factory, delegator=org.manager, delegate=org.bob,
              starts=timedelta(hours=-1), ends=timedelta(days=2), lines=lines)
    # bob asks for alice; the manager delegated to both
    line_id = lines.open([MANAGER], requester=org.bob, beneficiary=org.alice)
    step = lines.step(line_id, 1)
    for who in (org.alice, org.bob):
        with pytest.raises(Forbidden):
            lines.decide(step.id, who)
    assert lines.count(Approval) == 0


# Delegated authority ------------------------------------------------------------------------


def test_urgent_request_approver_with_authority_completes_the_non_dual_stages(
        lines: Lines, org: Org, session_factory: sessionmaker[Session]) -> None:
    _authority(session_factory, org.manager, "high")
    line_id = lines.open([MANAGER, OWNER, _group(org, "all", 3), _dual(org, 4)],
                         risk="high", privileged=True, urgent=True)
    outcome = lines.decide(lines.step(line_id, 1).id, org.manager)
    assert outcome.approval.authority == "authority:high"
    assert outcome.status == "waiting"
    assert [s.state for s in lines.steps(line_id)] == ["approved", "skipped", "skipped",
                                                        "waiting"]
    assert lines.audit(lines.step(line_id, 2).id) == ["approval_step.skip"]
    dual = lines.step(line_id, 4)
    lines.decide(dual.id, org.dual1)
    assert lines.decide(dual.id, org.dual2).status == "approved"


@pytest.mark.parametrize(("urgent", "authority", "risk"), [
    (False, "critical", "medium"),  # not urgent
    (True, "medium", "high"),  # authority below the line's risk
    (True, None, "low"),  # no authority
])
def test_authority_does_not_apply(lines: Lines, org: Org, session_factory: sessionmaker[Session],
                                  urgent: bool, authority: str | None, risk: str) -> None:
    if authority is not None:
        _authority(session_factory, org.manager, authority)
    line_id = lines.open([MANAGER, OWNER], risk=risk, urgent=urgent)
    outcome = lines.decide(lines.step(line_id, 1).id, org.manager)
    assert outcome.approval.authority is None
    assert [s.state for s in lines.steps(line_id)] == ["approved", "waiting"]

