"""H-gen's test world: people with a manager chain, applications, entitlements and roles
with owners, and assignments written as rows (setup only: generation reads the tables)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from certification import campaigns
from certification.models import Campaign, ReviewItem
from certification.schemas_campaigns import CampaignCreate
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role, RoleEntitlement, SodRule, SodRuleItem
from idgov.models.identity import Group, GroupMember, Identity
from idgov.models.requests import (
    AccessRequest,
    Approval,
    ApprovalStep,
    RequestLine,
    RequestType,
)
from idgov.types import Actor

ACTOR = Actor.system("tests")


@dataclass
class World:
    factory: sessionmaker[Session]
    clock: FixedClock
    ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def add(self, obj: Any) -> uuid.UUID:
        with unit_of_work(self.factory) as session:
            session.add(obj)
            session.flush()
            return obj.id  # type: ignore[no-any-return]

    def person(self, name: str, manager: str | None = None, *, department: str = "Finance",
               job: str = "ACC", state: str = "active") -> uuid.UUID:
        self.ids[name] = self.add(Identity(
            employee_id=f"E-{name}", given_name=name, family_name="Test", display_name=name,
            email=f"{name.lower()}@example.com", department=department, job_code=job,
            lifecycle_state=state, manager_id=self.ids[manager] if manager else None))
        return self.ids[name]

    def app(self, name: str, owner: str | None = None) -> uuid.UUID:
        self.ids[name] = self.add(Application(name=name, connector_kind="manual",
                                              owner_id=self.ids.get(owner or "")))
        return self.ids[name]

    def ent(self, name: str, app: str, *, risk: str = "low", privileged: bool = False,
            owner: str | None = None) -> uuid.UUID:
        self.ids[name] = self.add(Entitlement(
            application_id=self.ids[app], native_id=f"cn={name}", name=name, risk=risk,
            privileged=privileged, owner_id=self.ids.get(owner or "")))
        return self.ids[name]

    def role(self, name: str, *ents: str, owner: str | None = None) -> uuid.UUID:
        self.ids[name] = self.add(Role(name=name, owner_id=self.ids.get(owner or "")))
        with unit_of_work(self.factory) as session:
            for ent in ents:
                session.add(RoleEntitlement(role_id=self.ids[name], entitlement_id=self.ids[ent],
                                            valid_from=self.clock.now() - timedelta(days=30)))
        return self.ids[name]

    def assign(self, who: str, what: str, *, source: str = "admin",
               valid_from: datetime | None = None, **extra: Any) -> uuid.UUID:
        target = self.ids[what]
        with unit_of_work(self.factory) as session:
            is_role = session.get(Role, target) is not None
        now = self.clock.now()
        return self.add(Assignment(
            identity_id=self.ids[who], role_id=target if is_role else None,
            entitlement_id=None if is_role else target, source=source,
            granted_by="system:tests", valid_from=valid_from or now - timedelta(days=10),
            created_at=now, updated_at=now, **extra))

    def group(self, name: str, *members: str) -> uuid.UUID:
        self.ids[name] = self.add(Group(name=name))
        with unit_of_work(self.factory) as session:
            for member in members:
                session.add(GroupMember(group_id=self.ids[name], identity_id=self.ids[member]))
        return self.ids[name]

    def sod_rule(self, name: str, a: str, b: str) -> uuid.UUID:
        rule_id = self.add(SodRule(name=name, severity="high"))
        with unit_of_work(self.factory) as session:
            session.add(SodRuleItem(rule_id=rule_id, side="a", entitlement_id=self.ids[a]))
            session.add(SodRuleItem(rule_id=rule_id, side="b", entitlement_id=self.ids[b]))
        return rule_id

    def requested(self, who: str, what: str, approver: str) -> uuid.UUID:
        """An assignment from an approved request line (request, line, step, approval)."""
        now = self.clock.now()
        type_id = self.add(RequestType(key=f"t-{uuid.uuid4().hex[:8]}", name="Access"))
        request_id = self.add(AccessRequest(
            number="REQ-2026-000042", requester_id=self.ids[who], beneficiary_id=self.ids[who],
            request_type_id=type_id, state="fulfilled"))
        line_id = self.add(RequestLine(
            number="RITM-2026-000043", request_id=request_id, beneficiary_id=self.ids[who],
            entitlement_id=self.ids[what], state="fulfilled"))
        step_id = self.add(ApprovalStep(line_id=line_id, stage=1, kind="manager",
                                        label="Manager", state="approved"))
        self.add(Approval(step_id=step_id, approver_id=self.ids[approver], decision="approve",
                          decided_at=now - timedelta(days=11)))
        return self.assign(who, what, source="request", request_line_id=line_id)

    def account(self, who: str, app: str, **attributes: Any) -> None:
        self.add(Account(application_id=self.ids[app], native_id=f"uid={who}",
                         identity_id=self.ids[who], attributes=attributes))

    def campaign(self, name: str = "Q1 review", *, kind: str = "manager",
                 launch: bool = True, **fields: Any) -> Campaign:
        body = {"name": name, "kind": kind,
                "deadline_at": (self.clock.now() + timedelta(days=14)).isoformat(), **fields}
        with unit_of_work(self.factory) as session:
            made = campaigns.create_campaign(session, campaign_in=CampaignCreate.model_validate(
                body), actor=ACTOR, clock=self.clock)
            if launch:
                made = campaigns.launch(session, campaign_id=made.id, actor=ACTOR,
                                        clock=self.clock)
            return made

    def items(self, campaign_id: uuid.UUID) -> list[ReviewItem]:
        with self.factory() as session:
            return list(session.scalars(select(ReviewItem).where(
                ReviewItem.campaign_id == campaign_id)))

    def by_assignment(self, campaign_id: uuid.UUID) -> dict[uuid.UUID, ReviewItem]:
        return {i.assignment_id: i for i in self.items(campaign_id)}

    def update(self, model: Any, row_id: uuid.UUID, **values: Any) -> None:
        with unit_of_work(self.factory) as session:
            row = session.get(model, row_id)
            for key, value in values.items():
                setattr(row, key, value)


@pytest.fixture
def world(session_factory: sessionmaker[Session], clock: FixedClock) -> World:
    return World(session_factory, clock)
