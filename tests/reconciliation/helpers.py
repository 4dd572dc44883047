"""Seeding for the reconciliation tests: people, a memory target and its application."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.memory import MemoryConnector, MemoryTarget
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.models.provisioning import DriftItem, ProvisioningOperation, ReconciliationRun
from idgov.reconciliation import service
from idgov.reconciliation.endpoints import router
from idgov.types import Actor

ACTOR = Actor.system("reconciliation-tests")


@dataclass
class Lab:
    """One memory target, its application, and the database, with terse helpers."""

    factory: sessionmaker[Session]
    clock: FixedClock
    target: MemoryTarget
    application_id: uuid.UUID
    people: dict[str, uuid.UUID]

    def person(self, employee_id: str, *, email: str | None = None,
               state: str = "active", **attributes: Any) -> uuid.UUID:
        with unit_of_work(self.factory) as session:
            row = Identity(employee_id=employee_id, given_name="Test", family_name=employee_id,
                           display_name=f"Test {employee_id}",
                           email=email if email is not None
                           else f"{employee_id.lower()}@example.com",
                           lifecycle_state=state, attributes=dict(attributes))
            session.add(row)
            session.flush()
            self.people[employee_id] = row.id
            return row.id

    def entitlement(self, native_id: str, name: str | None = None) -> uuid.UUID:
        with unit_of_work(self.factory) as session:
            row = Entitlement(application_id=self.application_id, native_id=native_id,
                              name=name or native_id, kind="group")
            session.add(row)
            session.flush()
            return row.id

    def assign(self, employee_id: str, entitlement_id: uuid.UUID, **extra: Any) -> uuid.UUID:
        """An assignment in force, inserted without operations (as if it never landed)."""
        with unit_of_work(self.factory) as session:
            row = Assignment(identity_id=self.people[employee_id],
                             entitlement_id=entitlement_id, source="admin", reason="test",
                             valid_from=self.clock.now(), **extra)
            session.add(row)
            session.flush()
            return row.id

    def settings(self, **changes: Any) -> None:
        with unit_of_work(self.factory) as session:
            app = session.get(Application, self.application_id)
            assert app is not None
            for key, value in changes.items():
                if key == "settings":
                    app.settings = {**app.settings, **value}
                else:
                    setattr(app, key, value)

    def connector(self) -> MemoryConnector:
        return MemoryConnector(settings={"target": self.target.name}, credentials={})

    def aggregate(self) -> ReconciliationRun:
        with unit_of_work(self.factory) as session:
            run = service.aggregate(session, application_id=self.application_id,
                                    connector=self.connector(), actor=ACTOR, clock=self.clock)
            session.expunge(run)
            return run

    def reconcile(self, *, remediate: bool = False) -> ReconciliationRun:
        with unit_of_work(self.factory) as session:
            run = service.reconcile(session, application_id=self.application_id,
                                    connector=self.connector(), remediate=remediate,
                                    actor=ACTOR, clock=self.clock)
            session.expunge(run)
            return run

    def who(self, identity_id: uuid.UUID | None) -> str | None:
        if identity_id is None:
            return None
        return next(e for e, i in self.people.items() if i == identity_id)

    def accounts(self) -> dict[str, tuple[str | None, str]]:
        """username -> (employee id of its identity, status)."""
        with unit_of_work(self.factory) as session:
            rows = session.scalars(select(Account).where(
                Account.application_id == self.application_id))
            return {a.username or a.native_id: (self.who(a.identity_id), a.status)
                    for a in rows}

    def drift(self, run_id: uuid.UUID) -> list[DriftItem]:
        with unit_of_work(self.factory) as session:
            items = list(session.scalars(select(DriftItem).where(DriftItem.run_id == run_id)))
            session.expunge_all()
            return items

    def assignments(self) -> set[tuple[str | None, str, str]]:
        """(employee id, entitlement native id, source) of the assignments not revoked."""
        with unit_of_work(self.factory) as session:
            rows = session.execute(
                select(Assignment.identity_id, Entitlement.native_id, Assignment.source)
                .join(Entitlement, Entitlement.id == Assignment.entitlement_id)
                .where(Assignment.revoked_at.is_(None)))
            return {(self.who(i), n, s) for i, n, s in rows}

    def operations(self) -> list[ProvisioningOperation]:
        with unit_of_work(self.factory) as session:
            rows = list(session.scalars(select(ProvisioningOperation).where(
                ProvisioningOperation.application_id == self.application_id)
                .order_by(ProvisioningOperation.ordinal)))
            session.expunge_all()
            return rows

    def native(self, entitlement_id: uuid.UUID | None) -> str | None:
        if entitlement_id is None:
            return None
        with unit_of_work(self.factory) as session:
            row = session.get(Entitlement, entitlement_id)
            return row.native_id if row else None


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[MemoryTarget]:
    found = MemoryTarget.get(f"recon-{uuid.uuid4().hex[:8]}")
    yield found
    found.reset()
    MemoryTarget.forget_all()


@pytest.fixture
def lab(session_factory: sessionmaker[Session], clock: FixedClock,
        target: MemoryTarget) -> Lab:
    with unit_of_work(session_factory) as session:
        app = Application(name="Directory", connector_kind="memory",
                          settings={"target": target.name})
        session.add(app)
        session.flush()
        application_id = app.id
    return Lab(session_factory, clock, target, application_id, {})


@pytest.fixture
def api(app: FastAPI, client: TestClient) -> TestClient:
    """The client, with the reconciliation routes served (until main.py lists them)."""
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/reconciliation/runs" not in paths:
        app.include_router(router)
    return client
