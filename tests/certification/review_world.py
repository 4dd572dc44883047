"""H-review's test world: people, an application with entitlements of every risk, a role,
an active manager campaign with its review items written as rows (independent of
generation), and terse HTTP steps for reviewers, an administrator and an auditor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from certification.models import Campaign, ReviewItem
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Group, GroupMember
from tests.catalog.factories import new_identity
from tests.conftest import PersonHeaders, make_token

# (key, display name given/family, manager key, lifecycle state)
PEOPLE = [
    ("boss", "Bea", "Boss", None, "active"),
    ("mia", "Mia", "Manager", "boss", "active"),
    ("max", "Max", "Other", "boss", "active"),
    ("alice", "Alice", "Adams", "mia", "active"),
    ("bob", "Bob", "Brown", "mia", "active"),
    ("carol", "Carol", "Clark", "mia", "active"),
    ("dan", "Dan", "Dune", "max", "active"),
    ("gus", "Gus", "Group", None, "active"),
    ("tom", "Tom", "Gone", "mia", "terminated"),
]
# (key, risk, privileged)
ENTITLEMENTS = [("vpn", "low", False), ("erp_read", "medium", False),
                ("erp_post", "high", True), ("erp_admin", "critical", True)]


@dataclass
class World:
    client: TestClient
    factory: sessionmaker[Session]
    clock: FixedClock
    people: PersonHeaders
    admin: dict[str, str]
    auditor: dict[str, str]
    ids: dict[str, uuid.UUID] = field(default_factory=dict)

    # -- rows -----------------------------------------------------------------------------
    def build(self) -> World:
        with unit_of_work(self.factory) as session:
            for key, given, family, manager, state in PEOPLE:
                person = new_identity(session, key.upper(), given_name=given,
                                      family_name=family, state=state,
                                      manager_id=self.ids[manager] if manager else None)
                self.ids[key] = person.id
            app = Application(name="Ledger", connector_kind="manual", settings={},
                              owner_id=self.ids["boss"])
            session.add(app)
            session.flush()
            self.ids["ledger"] = app.id
            for key, risk, privileged in ENTITLEMENTS:
                ent = Entitlement(application_id=app.id, kind="group", native_id=key,
                                  name=key.replace("_", "-").upper(), risk=risk,
                                  privileged=privileged)
                session.add(ent)
                session.flush()
                self.ids[key] = ent.id
            role = Role(name="Clerk", owner_id=self.ids["boss"])
            group = Group(name="Ledger reviewers", kind="team")
            session.add_all([role, group])
            session.flush()
            self.ids["clerk"], self.ids["reviewers"] = role.id, group.id
            session.add(GroupMember(group_id=group.id, identity_id=self.ids["gus"]))
            session.add(GroupMember(group_id=group.id, identity_id=self.ids["carol"]))
        self.ids["campaign"] = self.campaign()
        return self

    def campaign(self, name: str = "Q1 review", **fields: Any) -> uuid.UUID:
        now = self.clock.now()
        values: dict[str, Any] = {
            "name": name, "kind": "manager", "state": "active", "scope": {}, "fallbacks": [],
            "starts_at": now, "deadline_at": now + timedelta(days=30), "reminder_days": [],
            "deadline_action": "keep", "trigger": "manual", "created_by": "tests",
            "generated_at": now, "counts": {}, **fields}
        with unit_of_work(self.factory) as session:
            row = Campaign(**values)
            session.add(row)
            session.flush()
            return row.id

    def item(self, person: str, access: str, *, reviewer: str | None = "mia",
             group: str | None = None, campaign: uuid.UUID | None = None,
             sod: bool = False, context: dict[str, Any] | None = None) -> uuid.UUID:
        """An assignment of ``access`` (an entitlement key or "clerk") to ``person`` and
        its review item for ``reviewer`` (or ``group``)."""
        now = self.clock.now()
        is_role = access == "clerk"
        with unit_of_work(self.factory) as session:
            grant = Assignment(identity_id=self.ids[person], source="admin",
                               role_id=self.ids[access] if is_role else None,
                               entitlement_id=None if is_role else self.ids[access],
                               valid_from=now - timedelta(days=90), granted_by="tests")
            session.add(grant)
            session.flush()
            ent = None if is_role else session.get(Entitlement, self.ids[access])
            row = ReviewItem(
                campaign_id=campaign or self.ids["campaign"], assignment_id=grant.id,
                identity_id=self.ids[person], role_id=grant.role_id,
                entitlement_id=grant.entitlement_id,
                application_id=None if ent is None else ent.application_id,
                source="admin", risk="medium" if ent is None else ent.risk,
                privileged=False if ent is None else ent.privileged, sod_conflict=sod,
                reviewer_id=self.ids[reviewer] if reviewer else None,
                reviewer_group_id=self.ids[group] if group else None,
                decision="pending", remediation="none",
                context=context or {"how": {"source": "admin"}}, created_at=now)
            session.add(row)
            session.flush()
            return row.id

    def item_row(self, item_id: uuid.UUID) -> ReviewItem:
        with self.factory() as session:
            row = session.get(ReviewItem, item_id)
            assert row is not None
            return row

    def campaign_row(self, campaign_id: uuid.UUID | None = None) -> Campaign:
        with self.factory() as session:
            row = session.get(Campaign, campaign_id or self.ids["campaign"])
            assert row is not None
            return row

    def set_campaign(self, campaign_id: uuid.UUID | None = None, **values: Any) -> None:
        with unit_of_work(self.factory) as session:
            row = session.get(Campaign, campaign_id or self.ids["campaign"])
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)

    def actions(self, object_id: Any) -> list[str]:
        with self.factory() as session:
            return list(session.scalars(select(AuditEvent.action).where(
                AuditEvent.object_id == str(object_id)).order_by(AuditEvent.seq)))

    def events(self, action: str) -> list[AuditEvent]:
        with self.factory() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.seq)))

    # -- HTTP -----------------------------------------------------------------------------
    def headers(self, who: str) -> dict[str, str]:
        if who == "admin":
            return self.admin
        if who == "auditor":
            return self.auditor
        return self.people[str(self.ids[who])]

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> Any:
        return self.client.request(method, "/certification" + path,
                                   headers=self.headers(who), **kwargs)

    def page(self, who: str, campaign: uuid.UUID | None = None, **params: Any) -> Any:
        res = self.call("GET", f"/campaigns/{campaign or self.ids['campaign']}/items", who,
                        params=params)
        assert res.status_code == 200, res.text
        return res.json()

    def decide(self, who: str, item_id: uuid.UUID, decision: str,
               comment: str | None = None) -> Any:
        return self.call("POST", f"/items/{item_id}/decision", who,
                         json={"decision": decision, "comment": comment})

    def bulk(self, who: str, body: dict[str, Any],
             campaign: uuid.UUID | None = None) -> Any:
        return self.call("POST",
                         f"/campaigns/{campaign or self.ids['campaign']}/bulk-decision", who,
                         json=body)

    def reassign(self, who: str, item_id: uuid.UUID, to: uuid.UUID | str,
                 comment: str | None = None) -> Any:
        return self.call("POST", f"/items/{item_id}/reassign", who,
                         json={"to_identity_id": str(to), "comment": comment})

    def sign_off(self, who: str, campaign: uuid.UUID | None = None) -> Any:
        return self.call("POST", f"/campaigns/{campaign or self.ids['campaign']}/sign-off",
                         who)


@pytest.fixture
def world(client: TestClient, session_factory: sessionmaker[Session], clock: FixedClock,
          people: PersonHeaders, admin_headers: dict[str, str]) -> World:
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "test-auditor",
                                                       ["auditor"])}
    return World(client=client, factory=session_factory, clock=clock, people=people,
                 admin=admin_headers, auditor=auditor).build()
