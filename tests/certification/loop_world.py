"""H-loop's test world: a memory target with people and a manager chain, campaigns and
review items written as rows (independent of generation and review), the engine and
reconciliation to close the loop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from certification import remediation
from certification.models import Campaign, ReviewerSignoff, ReviewItem
from connectors.memory import MemoryConnector, MemoryTarget
from idgov.assignments import service as assignments
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.auth import ServiceRoleGrant
from idgov.models.catalog import Entitlement
from idgov.models.identity import Group, GroupMember, Identity
from idgov.models.notifications import Notification
from idgov.models.provisioning import ProvisioningOperation, ReconciliationRun
from idgov.reconciliation import service as reconciliation
from idgov.types import Actor
from tests.catalog.factories import add_identity
from tests.provisioning.engine_env import Env, make_env

ACTOR = Actor.system("certification-tests")


@dataclass
class Loop:
    """A memory target (entitlements VPN, ERP-Read, ERP-Post) with Alice, Bob and Carol,
    who report to Mia, who reports to Boss; Ada is an administrator."""

    env: Env
    ids: dict[str, uuid.UUID]

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.env.factory

    @property
    def clock(self) -> FixedClock:
        return self.env.clock

    @property
    def application_id(self) -> uuid.UUID:
        return uuid.UUID(self.env.application_id)

    def ent(self, name: str) -> uuid.UUID:
        return uuid.UUID(self.env.ent[name])

    def update(self, model: Any, row_id: Any, **values: Any) -> None:
        with unit_of_work(self.factory) as session:
            row = session.get(model, row_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)

    def grant(self, person: str, entitlement: str | None = None, *,
              role_id: uuid.UUID | None = None, source: str = "admin") -> uuid.UUID:
        with unit_of_work(self.factory) as session:
            return assignments.grant(
                session, identity_id=self.ids[person],
                entitlement_id=self.ent(entitlement) if entitlement else None,
                role_id=role_id, source=source, reason="test", valid_from=None,
                valid_until=None, actor=ACTOR, clock=self.clock).id

    def provision(self) -> None:
        """Run the engine until every due operation is done, then move on a minute."""
        self.env.run()
        self.clock.advance(timedelta(minutes=1))

    def reconcile(self) -> ReconciliationRun:
        with unit_of_work(self.factory) as session:
            run = reconciliation.reconcile(
                session, application_id=self.application_id,
                connector=MemoryConnector(settings={"target": self.env.target.name},
                                          credentials={}),
                remediate=False, actor=ACTOR, clock=self.clock)
            session.expunge(run)
        assert run.state == "succeeded", run.error
        self.clock.advance(timedelta(minutes=1))
        return run

    def campaign(self, name: str = "Q1 access review", **fields: Any) -> uuid.UUID:
        now = self.clock.now()
        values: dict[str, Any] = {
            "name": name, "kind": "manager", "state": "active", "scope": {},
            "fallbacks": [], "starts_at": now, "deadline_at": now + timedelta(days=30),
            "reminder_days": [], "deadline_action": "escalate", "trigger": "manual",
            "created_by": "tests", "generated_at": now, "counts": {}, "created_at": now,
            "updated_at": now, **fields}
        with unit_of_work(self.factory) as session:
            row = Campaign(**values)
            session.add(row)
            session.flush()
            return row.id

    def item(self, campaign_id: uuid.UUID, assignment_id: uuid.UUID, *,
             reviewer: str | None = "Mia", decision: str = "pending",
             comment: str | None = None, **fields: Any) -> uuid.UUID:
        with unit_of_work(self.factory) as session:
            assignment = session.get(Assignment, assignment_id)
            assert assignment is not None
            application_id = None
            if assignment.entitlement_id is not None:
                entitlement = session.get(Entitlement, assignment.entitlement_id)
                assert entitlement is not None
                application_id = entitlement.application_id
            now = self.clock.now()
            reviewer_id = self.ids[reviewer] if reviewer else None
            decided = decision != "pending"
            row = ReviewItem(
                campaign_id=campaign_id, assignment_id=assignment_id,
                identity_id=assignment.identity_id, role_id=assignment.role_id,
                entitlement_id=assignment.entitlement_id, application_id=application_id,
                source=assignment.source, reviewer_id=reviewer_id,
                original_reviewer_id=None, decision=decision,
                decided_at=now if decided else None,
                decided_by=f"identity:{reviewer}" if decided else None, comment=comment,
                remediation="none", context={}, created_at=now, **fields)
            session.add(row)
            session.flush()
            return row.id

    def decide(self, item_id: uuid.UUID, decision: str, by: str = "Mia",
               comment: str | None = None) -> None:
        self.update(ReviewItem, item_id, decision=decision, decided_at=self.clock.now(),
                    decided_by=f"identity:{by}", comment=comment)

    def sign_off(self, campaign_id: uuid.UUID, reviewer: str = "Mia") -> dict[str, int]:
        with unit_of_work(self.factory) as session:
            session.add(ReviewerSignoff(campaign_id=campaign_id, reviewer_id=self.ids[reviewer],
                                        signed_off_at=self.clock.now()))
            return remediation.apply_decisions(
                session, campaign_id=campaign_id, reviewer_id=self.ids[reviewer],
                actor=Actor.for_identity(self.ids[reviewer], reviewer), clock=self.clock)

    def verify(self, campaign_id: uuid.UUID | None = None) -> int:
        with unit_of_work(self.factory) as session:
            return remediation.verify_remediation(session, clock=self.clock, actor=ACTOR,
                                                  campaign_id=campaign_id)

    def close(self, campaign_id: uuid.UUID, reason: str = "deadline") -> Campaign:
        with unit_of_work(self.factory) as session:
            return remediation.close_campaign(session, campaign_id=campaign_id, actor=ACTOR,
                                              clock=self.clock, reason=reason)

    def get(self, model: Any, row_id: Any) -> Any:
        with unit_of_work(self.factory) as session:
            row = session.get(model, row_id)
            assert row is not None
            session.expunge(row)
            return row

    def remediation_of(self, item_id: uuid.UUID) -> str:
        return str(self.get(ReviewItem, item_id).remediation)

    def revoke_ops(self, assignment_id: uuid.UUID) -> list[ProvisioningOperation]:
        with unit_of_work(self.factory) as session:
            found = list(session.scalars(select(ProvisioningOperation).where(
                ProvisioningOperation.cause_id == str(assignment_id),
                ProvisioningOperation.action == "revoke")))
            session.expunge_all()
            return found

    def notes(self, person: str, kind: str | None = None) -> list[Notification]:
        with unit_of_work(self.factory) as session:
            stmt = select(Notification).where(Notification.recipient_id == self.ids[person])
            if kind is not None:
                stmt = stmt.where(Notification.kind == kind)
            found = list(session.scalars(stmt.order_by(Notification.created_at)))
            session.expunge_all()
            return found

    def actions(self, object_id: Any) -> list[str]:
        with unit_of_work(self.factory) as session:
            return list(session.scalars(select(AuditEvent.action).where(
                AuditEvent.object_id == str(object_id)).order_by(AuditEvent.seq)))

    def members_of(self, entitlement: str) -> set[str]:
        """Usernames holding the entitlement on the target."""
        target = self.env.target
        return {target.accounts[n].username for n in target.members(f"cn={entitlement}")}

    def mark_account(self, person: str, **attributes: Any) -> None:
        with unit_of_work(self.factory) as session:
            account = session.scalars(select(Account).where(
                Account.identity_id == self.ids[person],
                Account.application_id == self.application_id)).one()
            account.attributes = {**account.attributes, **attributes}

    def group(self, name: str, *members: str) -> uuid.UUID:
        with unit_of_work(self.factory) as session:
            group = Group(name=name, kind="team")
            session.add(group)
            session.flush()
            for member in members:
                session.add(GroupMember(group_id=group.id, identity_id=self.ids[member]))
            return group.id


def at_days(clock: FixedClock, days: float) -> datetime:
    return clock.now() + timedelta(days=days)


@pytest.fixture(name="loop")
def loop_fixture(client: TestClient, admin_headers: dict[str, str],
                 session_factory: sessionmaker[Session], clock: FixedClock,
                 settings: Settings) -> Iterator[Loop]:
    env = make_env(client, admin_headers, session_factory, clock, settings)
    ids = {name: uuid.UUID(i) for name, i in env.person.items()}
    ids["Boss"] = uuid.UUID(add_identity(session_factory, "BOSS"))
    ids["Mia"] = uuid.UUID(add_identity(session_factory, "MIA", manager_id=str(ids["Boss"])))
    ids["Ada"] = uuid.UUID(add_identity(session_factory, "ADA"))
    loop = Loop(env=env, ids=ids)
    for name in ("Alice", "Bob", "Carol"):
        loop.update(Identity, ids[name], manager_id=ids["Mia"])
    with unit_of_work(session_factory) as session:
        session.add(ServiceRoleGrant(identity_id=ids["Ada"], role="administrator",
                                     granted_by="tests"))
    yield loop
    env.cache.close()
    MemoryTarget.forget_all()


__all__ = ["ACTOR", "Application", "Loop", "at_days", "loop_fixture"]
