"""A manual application worked by a resolution group, and a request for it.

    Legacy ERP (manual; owner: Olga Owner; resolution group "ERP support")
    ERP support: members Fay Fixer and Finn Fixer; owner Lena Lead
    Alice Adams asks for "Ledger" (low risk: auto-approved); Oscar Out is nobody here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.fulfilment import service as fulfilment
from idgov.models.application import Application
from idgov.models.identity import Group, GroupMember, Identity
from idgov.models.provisioning import FulfilmentTask, ProvisioningOperation
from idgov.types import Actor
from tests.catalog.factories import Api
from tests.conftest import PersonHeaders

PEOPLE = {
    "alice": ("Alice", "Adams"), "fay": ("Fay", "Fixer"), "finn": ("Finn", "Fixer"),
    "lena": ("Lena", "Lead"), "olga": ("Olga", "Owner"), "oscar": ("Oscar", "Out"),
}


@dataclass
class Desk:
    client: TestClient
    people: PersonHeaders
    admin: dict[str, str]
    factory: sessionmaker[Session]
    clock: FixedClock
    ids: dict[str, str] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return self.people[self.ids[who]]

    def ask(self, who: str, *items: str) -> Any:
        body = {"request_type": "manual-access", "form_data": {},
                "lines": [{"entitlement_id": self.ids[i]} for i in items]}
        resp = self.client.post("/requests", json=body, headers=self.as_(who))
        assert resp.status_code == 201, resp.text
        return resp.json()

    def request(self, request_id: str) -> Any:
        resp = self.client.get(f"/requests/{request_id}", headers=self.admin)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def engine_round(self) -> list[str]:
        """A stand-in for the engine on manual applications: each pending operation is
        claimed (running, no lease) and becomes a task. Returns the new task ids."""
        made: list[str] = []
        with unit_of_work(self.factory) as session:
            ops = session.scalars(
                select(ProvisioningOperation)
                .join(Application, Application.id == ProvisioningOperation.application_id)
                .where(ProvisioningOperation.state == "pending",
                       Application.connector_kind == "manual")
                .order_by(ProvisioningOperation.ordinal)).all()
            for op in ops:
                op.state = "running"
                op.attempts += 1
                op.started_at = self.clock.now()
                session.flush()
                task = fulfilment.open_task(session, operation=op,
                                            actor=Actor.system("engine"), clock=self.clock)
                made.append(str(task.id))
        return made

    def task(self, task_id: str) -> FulfilmentTask:
        with unit_of_work(self.factory) as session:
            task = session.get(FulfilmentTask, uuid.UUID(task_id))
            assert task is not None
            session.expunge(task)
            return task

    def operation(self, operation_id: uuid.UUID) -> ProvisioningOperation:
        with unit_of_work(self.factory) as session:
            op = session.get(ProvisioningOperation, operation_id)
            assert op is not None
            session.expunge(op)
            return op


@pytest.fixture
def desk(app: FastAPI, client: TestClient, people: PersonHeaders, admin_headers: dict[str, str],
         session_factory: sessionmaker[Session], clock: FixedClock) -> Desk:
    if not any(getattr(r, "path", "") == "/fulfilment/tasks" for r in app.routes):
        from idgov.fulfilment.endpoints import router  # until idgov.main serves it

        app.include_router(router)
    d = Desk(client=client, people=people, admin=admin_headers, factory=session_factory,
             clock=clock)
    with unit_of_work(session_factory) as session:
        for key, (given, family) in PEOPLE.items():
            person = Identity(employee_id=key.upper(), given_name=given, family_name=family,
                              display_name=f"{given} {family}", email=f"{key}@example.com")
            session.add(person)
            session.flush()
            d.ids[key] = str(person.id)
        group = Group(name="ERP support", kind="resolution",
                      owner_id=uuid.UUID(d.ids["lena"]))
        session.add(group)
        session.flush()
        d.ids["group"] = str(group.id)
        for member in ("fay", "finn"):
            session.add(GroupMember(group_id=group.id, identity_id=uuid.UUID(d.ids[member])))
        app = Application(name="Legacy ERP", connector_kind="manual", settings={},
                          owner_id=uuid.UUID(d.ids["olga"]), resolution_group_id=group.id)
        session.add(app)
        session.flush()
        d.ids["app"] = str(app.id)
    api = Api(client, admin_headers, d.ids["app"])
    d.ids["ledger"] = api.entitlement("Ledger")
    api.ok("POST", "/request-types", 201, json={
        "key": "manual-access", "name": "Manual access", "auto_approve_max_risk": "low"})
    return d
