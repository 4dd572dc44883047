"""Handover: what a leaver owned and the approvals waiting on them pass to their manager;
nobody is made to approve their own request; without a manager the administrators hear of
what stays unowned."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from idgov.approvals import service as approvals
from idgov.db.session import unit_of_work
from idgov.lifecycle.handover import hand_over
from idgov.models.application import Account, Application
from idgov.models.audit import AuditEvent
from idgov.models.auth import ServiceRoleGrant
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Group
from idgov.models.notifications import Notification
from idgov.models.requests import (
    AccessRequest,
    ApprovalStep,
    ApprovalStepApprover,
    Delegation,
    RequestLine,
    RequestType,
)
from tests.catalog.factories import add_identity
from tests.lifecycle.events_world import ACTOR, Life, life_fixture

__all__ = ["life_fixture"]


def _waiting_step(life: Life, *, requester: str, beneficiary: str, approver: str,
                  tag: str) -> uuid.UUID:
    """A request line whose manager step waits for ``approver``."""
    now = life.clock.now()
    with unit_of_work(life.factory) as session:
        rtype = session.scalars(select(RequestType).where(RequestType.key == "std")).first()
        if rtype is None:
            rtype = RequestType(key="std", name="Standard access")
            session.add(rtype)
            session.flush()
        request = AccessRequest(number=f"REQ-2026-{tag}", requester_id=life.ids[requester],
                                beneficiary_id=life.ids[beneficiary],
                                request_type_id=rtype.id, state="pending_approval",
                                submitted_at=now)
        session.add(request)
        session.flush()
        line = RequestLine(number=f"RITM-2026-{tag}", request_id=request.id,
                           beneficiary_id=life.ids[beneficiary], action="grant",
                           entitlement_id=uuid.UUID(life.env.ent["ERP-Post"]),
                           state="pending_approval", risk="low")
        session.add(line)
        session.flush()
        step = ApprovalStep(line_id=line.id, stage=1, kind="manager", label="Manager approval",
                            state="waiting", activated_at=now,
                            due_at=now + timedelta(hours=72))
        session.add(step)
        session.flush()
        session.add(ApprovalStepApprover(step_id=step.id, identity_id=life.ids[approver],
                                         origin="policy", added_at=now))
        return step.id


def _approvers(life: Life, step_id: uuid.UUID) -> dict[uuid.UUID, str]:
    with unit_of_work(life.factory) as session:
        return {a.identity_id: a.origin for a in session.scalars(
            select(ApprovalStepApprover).where(ApprovalStepApprover.step_id == step_id))}


def _notes(life: Life, name: str, kind: str) -> list[Notification]:
    with unit_of_work(life.factory) as session:
        found = list(session.scalars(select(Notification).where(
            Notification.recipient_id == life.ids[name], Notification.kind == kind)))
        session.expunge_all()
        return found


def test_a_leavers_ownership_and_waiting_approvals_pass_to_their_manager(life: Life) -> None:
    alice = life.ids["Alice"]
    with unit_of_work(life.factory) as session:
        role = Role(name="Payroll", owner_id=alice)
        group = Group(name="Payroll team", kind="team", owner_id=alice)
        session.add_all([role, group])
        entitlement = session.get(Entitlement, uuid.UUID(life.env.ent["VPN"]))
        application = session.get(Application, uuid.UUID(life.env.application_id))
        assert entitlement is not None and application is not None
        entitlement.owner_id = alice
        application.owner_id = alice
        service = Account(application_id=application.id, native_id="svc-payroll",
                          username="svc-payroll", account_type="service", owner_id=alice)
        session.add(service)
        session.add(Delegation(delegator_id=alice, delegate_id=life.ids["Bob"],
                               starts_at=life.clock.now(),
                               ends_at=life.clock.now() + timedelta(days=10)))
        session.flush()
        owned = {"role": role.id, "group": group.id, "account": service.id}
    step_id = _waiting_step(life, requester="Bob", beneficiary="Bob", approver="Alice",
                            tag="000001")

    life.terminate("Alice")

    mia = life.ids["Mia"]
    with unit_of_work(life.factory) as session:
        assert session.get(Role, owned["role"]).owner_id == mia  # type: ignore[union-attr]
        assert session.get(Group, owned["group"]).owner_id == mia  # type: ignore[union-attr]
        assert session.get(Account,  # type: ignore[union-attr]
                           owned["account"]).owner_id == mia
        assert session.get(Entitlement,  # type: ignore[union-attr]
                           uuid.UUID(life.env.ent["VPN"])).owner_id == mia
        assert session.get(Application,  # type: ignore[union-attr]
                           uuid.UUID(life.env.application_id)).owner_id == mia
        delegation = session.scalars(select(Delegation)).one()
        assert delegation.revoked_at == life.clock.now()
        handover = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "identity.handover",
            AuditEvent.object_id == str(alice))).one()
        assert handover.context is not None
        assert handover.context["successor_id"] == str(mia)
        assert handover.context["approval_steps"] == [str(step_id)]
        actions = set(session.scalars(select(AuditEvent.action)
                                      .where(AuditEvent.action.like("%.handover"))))
    assert actions == {"role.handover", "group.handover", "account.handover",
                       "entitlement.handover", "application.handover",
                       "approval_step.handover", "identity.handover"}
    assert _approvers(life, step_id) == {mia: "handover"}
    [told] = _notes(life, "Mia", "lifecycle.handover")
    assert "Payroll" in told.body and "approval steps: 1" in told.body
    assert len(_notes(life, "Mia", "approval.waiting")) == 1

    with unit_of_work(life.factory) as session:
        outcome = approvals.record_decision(session, step_id=step_id, approver_id=mia,
                                            decision="approve", comment=None, actor=ACTOR,
                                            clock=life.clock)
        assert outcome.status == "approved"


def test_a_manager_who_requested_the_line_is_skipped_for_their_own_manager(
        life: Life) -> None:
    own = _waiting_step(life, requester="Mia", beneficiary="Carol", approver="Alice",
                        tag="000002")
    for_mia = _waiting_step(life, requester="Bob", beneficiary="Mia", approver="Alice",
                            tag="000003")

    life.terminate("Alice")

    boss = life.ids["Boss"]
    assert _approvers(life, own) == {boss: "handover"}
    assert _approvers(life, for_mia) == {boss: "handover"}
    assert len(_notes(life, "Boss", "approval.waiting")) == 2
    assert _notes(life, "Mia", "approval.waiting") == []


def test_a_step_already_naming_the_manager_gets_the_next_manager_up(life: Life) -> None:
    step_id = _waiting_step(life, requester="Bob", beneficiary="Bob", approver="Alice",
                            tag="000004")
    with unit_of_work(life.factory) as session:
        session.add(ApprovalStepApprover(step_id=step_id, identity_id=life.ids["Mia"],
                                         origin="policy", added_at=life.clock.now()))

    life.terminate("Alice")

    assert _approvers(life, step_id) == {life.ids["Mia"]: "policy",
                                         life.ids["Boss"]: "handover"}


def test_without_any_active_manager_nothing_moves_and_administrators_are_told(
        life: Life) -> None:
    carol = life.ids["Carol"]
    admin = uuid.UUID(add_identity(life.factory, "ADMIN1"))
    with unit_of_work(life.factory) as session:
        role = Role(name="Treasury", owner_id=carol)
        session.add(role)
        session.add(ServiceRoleGrant(identity_id=admin, role="administrator"))
        session.flush()
        role_id = role.id
    step_id = _waiting_step(life, requester="Bob", beneficiary="Bob", approver="Carol",
                            tag="000005")
    life.set("Carol", lifecycle_state="terminated")

    with unit_of_work(life.factory) as session:
        result = hand_over(session, identity_id=carol, actor=ACTOR, clock=life.clock)
        assert result.successor_id is None
        assert result.unowned["roles"] == [role_id]
        assert result.unowned["approval_steps"] == [step_id]
        assert session.get(Role, role_id).owner_id == carol  # type: ignore[union-attr]
    assert _approvers(life, step_id) == {carol: "policy"}
    with unit_of_work(life.factory) as session:
        [told] = session.scalars(select(Notification).where(
            Notification.recipient_id == admin, Notification.kind == "lifecycle.unowned")).all()
        assert "Treasury" in told.body


def test_a_second_handover_finds_nothing_more(life: Life) -> None:
    with unit_of_work(life.factory) as session:
        session.add(Role(name="Audit", owner_id=life.ids["Alice"]))
    life.terminate("Alice")
    with unit_of_work(life.factory) as session:
        result = hand_over(session, identity_id=life.ids["Alice"], actor=ACTOR,
                           clock=life.clock)
    assert not result.changed and result.owned == {k: [] for k in result.owned}
    assert len(_notes(life, "Mia", "lifecycle.handover")) == 1
