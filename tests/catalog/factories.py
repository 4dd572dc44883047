"""Rows other modules' APIs own (applications, assignments, identities), inserted via the ORM."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.identity import Identity


def add_application(factory: sessionmaker[Session], name: str = "Finance ERP") -> str:
    with unit_of_work(factory) as session:
        app = Application(name=name, connector_kind="manual", settings={})
        session.add(app)
        session.flush()
        return str(app.id)


def new_identity(session: Session, employee_id: str, *, manager_id: uuid.UUID | None = None,
                 state: str = "active", given_name: str = "Test",
                 family_name: str | None = None, email: str | None = None,
                 **columns: Any) -> Identity:
    """An identity added to the open session: ``given_name family_name`` (by default
    "Test <employee_id>"), ``<employee_id>@example.com``, reporting to ``manager_id``;
    ``columns`` sets other columns."""
    family_name = family_name or employee_id
    person = Identity(employee_id=employee_id, given_name=given_name, family_name=family_name,
                      display_name=f"{given_name} {family_name}",
                      email=email or f"{employee_id}@example.com",
                      manager_id=manager_id, lifecycle_state=state, **columns)
    session.add(person)
    session.flush()
    return person


def add_identity(factory: sessionmaker[Session], employee_id: str,
                 manager_id: str | None = None) -> str:
    with unit_of_work(factory) as session:
        return str(new_identity(session, employee_id,
                                manager_id=uuid.UUID(manager_id) if manager_id else None,
                                email=f"{employee_id.lower()}@example.com").id)


def add_assignment(factory: sessionmaker[Session], *, identity_id: str, valid_from: datetime,
                   role_id: str | None = None, entitlement_id: str | None = None,
                   source: str = "admin", **extra: Any) -> str:
    with unit_of_work(factory) as session:
        row = Assignment(identity_id=uuid.UUID(identity_id),
                         role_id=uuid.UUID(role_id) if role_id else None,
                         entitlement_id=uuid.UUID(entitlement_id) if entitlement_id else None,
                         source=source, valid_from=valid_from, **extra)
        session.add(row)
        session.flush()
        return str(row.id)


def audit_actions(factory: sessionmaker[Session], object_id: str) -> list[str]:
    """The audit actions recorded about ``object_id``, oldest first."""
    with unit_of_work(factory) as session:
        return list(session.scalars(select(AuditEvent.action)
                                    .where(AuditEvent.object_id == object_id)
                                    .order_by(AuditEvent.seq)))


class Api:
    """Terse calls for tests that build a catalog through the public API."""

    def __init__(self, client: TestClient, headers: dict[str, str], application_id: str):
        self.client = client
        self.headers = headers
        self.application_id = application_id

    def ok(self, method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
        resp = self.client.request(method, url, headers=self.headers, **kwargs)
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    def entitlement(self, name: str, **extra: Any) -> str:
        body = {"application_id": self.application_id, "native_id": f"cn={name}",
                "name": name, **extra}
        return str(self.ok("POST", "/entitlements", 201, json=body)["id"])

    def role(self, name: str, **extra: Any) -> str:
        return str(self.ok("POST", "/roles", 201, json={"name": name, **extra})["id"])

    def include(self, parent: str, child: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("POST", f"/roles/{parent}/included-roles", 201,
                                         json={"role_id": child})
        return result

    def grant(self, role: str, entitlement: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("POST", f"/roles/{role}/entitlements", 201,
                                         json={"entitlement_id": entitlement})
        return result
