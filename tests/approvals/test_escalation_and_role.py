"""Escalating overdue steps; the approver's inbox and the derived "approver" role."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.approvals import service
from idgov.approvals.roles import is_approver
from idgov.approvals.tasks import escalate_overdue
from idgov.auth.roles import service_roles_of
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from idgov.models.requests import Delegation
from idgov.policy.decision import ApprovalNeed
from tests.approvals.conftest import SYSTEM, Lines, Org

MANAGER = ApprovalNeed(stage=1, kind="manager", reason="Manager approval")
OWNER = ApprovalNeed(stage=2, kind="owner", reason="Owner approval")


def _escalate(lines: Lines) -> int:
    with unit_of_work(lines.factory) as session:
        return escalate_overdue(session, clock=lines.clock, actor=SYSTEM, extension_hours=48)


def test_overdue_step_is_escalated_to_the_next_manager(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER, OWNER])
    step = lines.step(line_id, 1)
    lines.clock.advance(timedelta(hours=71))
    assert _escalate(lines) == 0  # not due yet
    lines.clock.advance(timedelta(hours=1))
    assert _escalate(lines) == 1
    escalated = lines.step(line_id, 1)
    assert escalated.escalation_level == 1
    assert escalated.due_at == lines.clock.now() + timedelta(hours=48)
    assert lines.approvers(step.id) == {org.manager: "policy", org.director: "escalation"}
    assert lines.notifications("approval.escalated") == [(org.director, str(step.id))]
    assert lines.audit(step.id) == ["approval_step.open", "approval_step.escalate"]
    with lines.factory() as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "approval_step.escalate")).one()
        assert event.before is not None and event.after is not None
        assert (event.before["escalation_level"], event.after["escalation_level"]) == (0, 1)
        assert event.context is not None
        assert event.context["added_approvers"] == [str(org.director)]
    # the pending stage is untouched, and nothing is escalated again before the new deadline
    assert lines.step(line_id, 2).escalation_level == 0
    assert _escalate(lines) == 0
    # the director may now decide
    assert lines.decide(step.id, org.director).step.state == "approved"


def test_second_escalation_climbs_again_and_skips_requester(lines: Lines, org: Org) -> None:
    # the manager asks for alice, so the director approves; escalation skips the manager
    # (the requester) and adds the ceo; a second escalation finds nobody new
    line_id = lines.open([MANAGER], requester=org.manager, beneficiary=org.alice)
    step = lines.step(line_id, 1)
    assert lines.approvers(step.id) == {org.director: "policy"}
    lines.clock.advance(timedelta(hours=73))
    assert _escalate(lines) == 1
    assert lines.approvers(step.id) == {org.director: "policy", org.ceo: "escalation"}
    lines.clock.advance(timedelta(hours=49))
    assert _escalate(lines) == 1
    assert lines.step(line_id, 1).escalation_level == 2
    assert lines.approvers(step.id) == {org.director: "policy", org.ceo: "escalation"}


def test_escalation_never_adds_the_beneficiary(lines: Lines, org: Org) -> None:
    # deputy approves a line for the ceo (deputy's manager): escalating finds nobody new
    line_id = lines.open([ApprovalNeed(stage=1, kind="control_owner", reason="Control",
                                       owner_id=org.deputy)], beneficiary=org.ceo)
    step = lines.step(line_id, 1)
    lines.clock.advance(timedelta(hours=73))
    assert _escalate(lines) == 1
    assert lines.approvers(step.id) == {org.deputy: "policy"}


def test_decided_steps_are_not_escalated(lines: Lines, org: Org) -> None:
    line_id = lines.open([MANAGER])
    lines.decide(lines.step(line_id, 1).id, org.manager)
    lines.clock.advance(timedelta(days=10))
    assert _escalate(lines) == 0


def _inbox(factory: sessionmaker[Session], who: uuid.UUID, lines: Lines) -> list[uuid.UUID]:
    with factory() as session:
        stmt = service.waiting_steps_for(session, identity_id=who, at=lines.clock.now())
        return [s.id for s in session.scalars(stmt)]


def _is_approver(factory: sessionmaker[Session], who: uuid.UUID, lines: Lines) -> bool:
    with factory() as session:
        return is_approver(session, who, clock=lines.clock)


def test_inbox_and_approver_role_follow_the_waiting_steps(
        lines: Lines, org: Org, session_factory: sessionmaker[Session]) -> None:
    line_id = lines.open([MANAGER, OWNER])
    first, second = lines.steps(line_id)
    assert _inbox(session_factory, org.manager, lines) == [first.id]
    assert _is_approver(session_factory, org.manager, lines) is True
    # the owner's stage has not started
    assert _inbox(session_factory, org.owner, lines) == []
    assert _is_approver(session_factory, org.owner, lines) is False
    lines.decide(first.id, org.manager)
    assert _is_approver(session_factory, org.manager, lines) is False
    assert _inbox(session_factory, org.owner, lines) == [second.id]
    assert _is_approver(session_factory, org.owner, lines) is True
    lines.decide(second.id, org.owner)
    assert _is_approver(session_factory, org.owner, lines) is False


def test_current_delegate_is_an_approver_while_the_delegation_is_in_force(
        lines: Lines, org: Org, session_factory: sessionmaker[Session]) -> None:
    now = lines.clock.now()
    with unit_of_work(session_factory) as session:
        session.add(Delegation(delegator_id=org.manager, delegate_id=org.deputy,
                               starts_at=now + timedelta(hours=1), ends_at=now + timedelta(days=1),
                               max_risk="medium"))
    line_id = lines.open([MANAGER])
    high_id = lines.open([MANAGER], beneficiary=org.bob, risk="high")
    step = lines.step(line_id, 1)
    assert _is_approver(session_factory, org.deputy, lines) is False
    lines.clock.advance(timedelta(hours=1))
    assert _is_approver(session_factory, org.deputy, lines) is True
    # the high-risk line is above the delegation's ceiling
    assert _inbox(session_factory, org.deputy, lines) == [step.id]
    assert lines.step(high_id, 1).id in _inbox(session_factory, org.manager, lines)
    lines.clock.advance(timedelta(days=1))
    assert _is_approver(session_factory, org.deputy, lines) is False


@pytest.mark.usefixtures("approver_role")
def test_installed_role_source_derives_the_approver_role(
        lines: Lines, org: Org, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        assert "approver" not in service_roles_of(session, org.owner)
    line_id = lines.open([ApprovalNeed(stage=1, kind="owner", reason="Owner")])
    with session_factory() as session:
        assert "approver" in service_roles_of(session, org.owner)
    lines.decide(lines.step(line_id, 1).id, org.owner)
    with session_factory() as session:
        assert "approver" not in service_roles_of(session, org.owner)
