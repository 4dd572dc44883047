"""A small organisation for the assignment tests, built through the ORM."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth.caller import Caller
from idgov.db.session import unit_of_work
from idgov.errors import Unauthenticated
from idgov.models import Application, Entitlement, Role
from tests.catalog.factories import new_identity


@dataclass(frozen=True)
class Org:
    """CEO -> manager -> report; an outsider; an owner of the role and the entitlement."""

    ceo: uuid.UUID
    manager: uuid.UUID
    report: uuid.UUID
    outsider: uuid.UUID
    owner: uuid.UUID
    leaver: uuid.UUID
    role: uuid.UUID
    other_role: uuid.UUID
    entitlement: uuid.UUID
    capped_entitlement: uuid.UUID


@pytest.fixture
def org(session_factory: sessionmaker[Session]) -> Org:
    with unit_of_work(session_factory) as session:
        ceo = new_identity(session, "ceo")
        manager = new_identity(session, "mgr", manager_id=ceo.id)
        report = new_identity(session, "rep", manager_id=manager.id)
        outsider = new_identity(session, "out", manager_id=ceo.id)
        owner = new_identity(session, "own", manager_id=ceo.id)
        leaver = new_identity(session, "gone", manager_id=ceo.id, state="terminated")
        app = Application(name="Directory", connector_kind="ldap", settings={})
        session.add(app)
        session.flush()
        role = Role(name="Clerk", kind="business", owner_id=owner.id)
        other_role = Role(name="Engineer", kind="business")
        ent = Entitlement(application_id=app.id, native_id="cn=vpn", name="VPN-Users",
                          owner_id=owner.id)
        capped = Entitlement(application_id=app.id, native_id="cn=prod-admin",
                             name="AWS-Prod-Admin", privileged=True, risk="critical",
                             max_duration_days=30)
        session.add_all([role, other_role, ent, capped])
        session.flush()
        return Org(ceo=ceo.id, manager=manager.id, report=report.id, outsider=outsider.id,
                   owner=owner.id, leaver=leaver.id, role=role.id, other_role=other_role.id,
                   entitlement=ent.id, capped_entitlement=capped.id)


PersonHeaders = Callable[[uuid.UUID, list[str]], dict[str, str]]


@pytest.fixture
def person_headers(app: FastAPI) -> PersonHeaders:
    """Headers for a person signed in with derived service roles (stands in for OIDC)."""
    people: dict[str, Caller] = {}

    def resolve(_session: Session, credential: str) -> Caller:
        if credential not in people:
            raise Unauthenticated("the bearer token is not valid")
        return people[credential]

    app.state.ctx.oidc = resolve

    def headers(identity_id: uuid.UUID, roles: list[str]) -> dict[str, str]:
        credential = f"person-{identity_id}-{'-'.join(roles)}"
        people[credential] = Caller.build(kind="oidc", name=str(identity_id),
                                          roles=frozenset(roles), identity_id=identity_id)
        return {"Authorization": f"Bearer {credential}"}

    return headers
