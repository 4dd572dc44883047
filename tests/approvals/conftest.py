"""A small organisation and request rows for the approval tests, built through the ORM.

    ceo
    ├── director ── manager ──┬── alice
    │                         └── bob
    ├── owner (owns the entitlement "Payables" and the role "Clerk")
    ├── app_owner (owns the application "Finance ERP")
    ├── deputy, outsider
    └── dual1, dual2, dual3, leaver (terminated): the group "Dual control"
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.approvals import service
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.audit import AuditEvent
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Group, GroupMember, Identity
from idgov.models.notifications import Notification
from idgov.models.requests import (
    AccessRequest,
    Approval,
    ApprovalStep,
    RequestLine,
    RequestType,
)
from idgov.policy.decision import ApprovalNeed
from idgov.types import Actor
from tests.catalog.factories import new_identity

SYSTEM = Actor.system("tests")


@dataclass(frozen=True)
class Org:
    ceo: uuid.UUID
    director: uuid.UUID
    manager: uuid.UUID
    alice: uuid.UUID
    bob: uuid.UUID
    owner: uuid.UUID
    app_owner: uuid.UUID
    deputy: uuid.UUID
    outsider: uuid.UUID
    dual1: uuid.UUID
    dual2: uuid.UUID
    dual3: uuid.UUID
    leaver: uuid.UUID
    dual_group: uuid.UUID
    empty_group: uuid.UUID
    payables: uuid.UUID  # entitlement owned by owner, in an application owned by app_owner
    unowned: uuid.UUID  # entitlement without an owner: its application's owner approves
    orphan: uuid.UUID  # entitlement with no owner in an application with no owner
    clerk: uuid.UUID  # role owned by owner
    request_type: uuid.UUID


def _person(session: Session, key: str, manager: Identity | None = None,
            state: str = "active") -> Identity:
    """"<Key> Test", <key>@example.com."""
    return new_identity(session, key, manager_id=manager.id if manager else None, state=state,
                        given_name=key.title(), family_name="Test")


@pytest.fixture
def org(session_factory: sessionmaker[Session]) -> Org:
    with unit_of_work(session_factory) as session:
        ceo = _person(session, "ceo")
        director = _person(session, "director", ceo)
        manager = _person(session, "manager", director)
        alice = _person(session, "alice", manager)
        bob = _person(session, "bob", manager)
        owner = _person(session, "owner", ceo)
        app_owner = _person(session, "appowner", ceo)
        deputy = _person(session, "deputy", ceo)
        outsider = _person(session, "outsider", ceo)
        dual1 = _person(session, "dual1", ceo)
        dual2 = _person(session, "dual2", ceo)
        dual3 = _person(session, "dual3", ceo)
        leaver = _person(session, "leaver", ceo, state="terminated")
        dual_group = Group(name="Dual control", kind="team")
        empty_group = Group(name="Nobody", kind="team")
        session.add_all([dual_group, empty_group])
        session.flush()
        session.add_all([GroupMember(group_id=dual_group.id, identity_id=p.id)
                         for p in (dual1, dual2, dual3, leaver)])
        erp = Application(name="Finance ERP", connector_kind="manual", settings={},
                          owner_id=app_owner.id)
        legacy = Application(name="Legacy", connector_kind="manual", settings={})
        session.add_all([erp, legacy])
        session.flush()
        payables = Entitlement(application_id=erp.id, native_id="cn=payables", name="Payables",
                               owner_id=owner.id)
        unowned = Entitlement(application_id=erp.id, native_id="cn=reports", name="Reports")
        orphan = Entitlement(application_id=legacy.id, native_id="cn=old", name="Old")
        clerk = Role(name="Clerk", kind="business", owner_id=owner.id)
        rtype = RequestType(key="access", name="Access", approval_sla_hours=72)
        session.add_all([payables, unowned, orphan, clerk, rtype])
        session.flush()
        return Org(ceo=ceo.id, director=director.id, manager=manager.id, alice=alice.id,
                   bob=bob.id, owner=owner.id, app_owner=app_owner.id, deputy=deputy.id,
                   outsider=outsider.id, dual1=dual1.id, dual2=dual2.id, dual3=dual3.id,
                   leaver=leaver.id, dual_group=dual_group.id, empty_group=empty_group.id,
                   payables=payables.id, unowned=unowned.id, orphan=orphan.id, clerk=clerk.id,
                   request_type=rtype.id)


_numbers = count(1)


@dataclass
class Lines:
    """Creates request lines and opens their approvals, each in its own transaction."""

    factory: sessionmaker[Session]
    clock: FixedClock
    org: Org

    def open(self, needs: Sequence[ApprovalNeed], *, requester: uuid.UUID | None = None,
             beneficiary: uuid.UUID | None = None, entitlement: uuid.UUID | None = None,
             role: uuid.UUID | None = None, risk: str = "medium", privileged: bool = False,
             urgent: bool = False, control_owner: uuid.UUID | None = None) -> uuid.UUID:
        """A pending line (default: alice asks for Payables for herself); returns its id."""
        beneficiary = beneficiary or self.org.alice
        if role is None and entitlement is None:
            entitlement = self.org.payables
        n = next(_numbers)
        with unit_of_work(self.factory) as session:
            request = AccessRequest(
                number=f"REQ-2026-{n:06d}", requester_id=requester or beneficiary,
                beneficiary_id=beneficiary, request_type_id=self.org.request_type,
                form_data={"justification": "month-end close"}, urgent=urgent,
                state="pending_approval", submitted_at=self.clock.now())
            session.add(request)
            session.flush()
            line = RequestLine(
                number=f"RITM-2026-{n:06d}", request_id=request.id, beneficiary_id=beneficiary,
                action="grant", role_id=role, entitlement_id=entitlement, risk=risk,
                privileged=privileged, state="pending_approval",
                decision={"risk": risk, "violations": []}, control_owner_id=control_owner)
            session.add(line)
            session.flush()
            rtype = session.get(RequestType, self.org.request_type)
            assert rtype is not None
            service.open_approvals(session, line=line, request=request, request_type=rtype,
                                   needs=needs, actor=SYSTEM, clock=self.clock)
            return line.id

    def steps(self, line_id: uuid.UUID) -> list[ApprovalStep]:
        with self.factory() as session:
            return list(session.scalars(select(ApprovalStep).where(ApprovalStep.line_id == line_id)
                                        .order_by(ApprovalStep.stage)))

    def step(self, line_id: uuid.UUID, stage: int) -> ApprovalStep:
        return next(s for s in self.steps(line_id) if s.stage == stage)

    def approvers(self, step_id: uuid.UUID) -> dict[uuid.UUID, str]:
        from idgov.models.requests import ApprovalStepApprover

        with self.factory() as session:
            rows = session.scalars(select(ApprovalStepApprover)
                                   .where(ApprovalStepApprover.step_id == step_id))
            return {r.identity_id: r.origin for r in rows}

    def decide(self, step_id: uuid.UUID, who: uuid.UUID, decision: Any = "approve",
               comment: str | None = None) -> service.LineApprovalOutcome:
        with unit_of_work(self.factory) as session:
            return service.record_decision(session, step_id=step_id, approver_id=who,
                                           decision=decision, comment=comment,
                                           actor=Actor.for_identity(who, str(who)),
                                           clock=self.clock)

    def approvals(self, step_id: uuid.UUID) -> list[Approval]:
        with self.factory() as session:
            return list(session.scalars(select(Approval).where(Approval.step_id == step_id)
                                        .order_by(Approval.decided_at, Approval.id)))

    def set_line_state(self, line_id: uuid.UUID, state: str) -> None:
        with unit_of_work(self.factory) as session:
            line = session.get(RequestLine, line_id)
            assert line is not None
            line.state = state

    def notifications(self, kind: str) -> list[tuple[uuid.UUID, str | None]]:
        with self.factory() as session:
            return [(n.recipient_id, n.object_id) for n in session.scalars(
                select(Notification).where(Notification.kind == kind)
                .order_by(Notification.created_at, Notification.recipient_id))]

    def audit(self, object_id: uuid.UUID) -> list[str]:
        with self.factory() as session:
            return list(session.scalars(select(AuditEvent.action)
                                        .where(AuditEvent.object_id == str(object_id))
                                        .order_by(AuditEvent.seq)))

    def count(self, model: Any) -> int:
        with self.factory() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def lines(session_factory: sessionmaker[Session], clock: FixedClock, org: Org) -> Lines:
    return Lines(session_factory, clock, org)


@pytest.fixture
def approver_role(clock: FixedClock) -> Iterator[None]:
    """The "approver" role source installed with the test clock (as the composition root
    does with its own)."""
    from idgov.approvals.roles import install
    from idgov.auth.roles import (
        register_role_source,
        registered_role_sources,
        unregister_role_source,
    )

    previous = registered_role_sources().get("approver")
    install(clock)
    yield
    if previous is None:
        unregister_role_source("approver")
    else:
        register_role_source("approver", previous)
