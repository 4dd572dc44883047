"""Service roles of a person: explicit grants plus the roles derived from the data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth.roles import (
    person_roles,
    register_role_source,
    registered_role_sources,
    service_roles_of,
    unregister_role_source,
)
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.auth import ServiceRoleGrant
from idgov.models.catalog import Entitlement, Role
from tests.auth.conftest import add_person


def _roles(factory: sessionmaker[Session], identity_id: uuid.UUID) -> frozenset[str]:
    with unit_of_work(factory) as session:
        return service_roles_of(session, identity_id)


def test_active_person_is_requester_only(session_factory: sessionmaker[Session]) -> None:
    ada = add_person(session_factory, "E1")
    assert _roles(session_factory, ada) == {"requester"}


def test_manager_only_with_direct_reports(session_factory: sessionmaker[Session]) -> None:
    boss = add_person(session_factory, "B1")
    assert "manager" not in _roles(session_factory, boss)
    add_person(session_factory, "R1", manager_id=boss)
    assert _roles(session_factory, boss) == {"requester", "manager"}


def _own_application(session: Session, owner: uuid.UUID) -> None:
    session.add(Application(name="payroll", connector_kind="manual", owner_id=owner))


def _own_role(session: Session, owner: uuid.UUID) -> None:
    session.add(Role(name="Accountant", owner_id=owner))


def _own_entitlement(session: Session, owner: uuid.UUID) -> None:
    app = Application(name="ledger", connector_kind="manual")
    session.add(app)
    session.flush()
    session.add(Entitlement(application_id=app.id, native_id="cn=post", name="Post",
                            owner_id=owner))


@pytest.mark.parametrize("own", [_own_application, _own_role, _own_entitlement],
                         ids=["application", "role", "entitlement"])
def test_owner_only_when_owning_something(own: Any,
                                          session_factory: sessionmaker[Session]) -> None:
    ada = add_person(session_factory, "E1")
    bob = add_person(session_factory, "E2")
    with unit_of_work(session_factory) as session:
        own(session, ada)
    assert _roles(session_factory, ada) == {"requester", "owner"}
    assert _roles(session_factory, bob) == {"requester"}


def test_explicit_grants_add_to_derived_roles(session_factory: sessionmaker[Session]) -> None:
    ada = add_person(session_factory, "E1")
    with unit_of_work(session_factory) as session:
        session.add_all([ServiceRoleGrant(identity_id=ada, role="administrator"),
                         ServiceRoleGrant(identity_id=ada, role="hr-system")])
    assert _roles(session_factory, ada) == {"requester", "administrator", "hr-system"}


def test_inactive_person_keeps_grants_but_derives_nothing(
        session_factory: sessionmaker[Session]) -> None:
    gone = add_person(session_factory, "E1", state="terminated")
    add_person(session_factory, "R1", manager_id=gone)
    with unit_of_work(session_factory) as session:
        session.add(ServiceRoleGrant(identity_id=gone, role="auditor"))
    with unit_of_work(session_factory) as session:
        found = person_roles(session, gone)
    assert found is not None
    assert not found.active
    assert found.roles == {"auditor"}


def test_unknown_identity_has_no_roles(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        assert person_roles(session, uuid.uuid4()) is None
    assert _roles(session_factory, uuid.uuid4()) == frozenset()


@pytest.fixture
def approver_source() -> Iterator[set[uuid.UUID]]:
    """Register "approver" as the access-requests module will; the set says who waits."""
    waiting: set[uuid.UUID] = set()
    register_role_source("approver", lambda _session, identity_id: identity_id in waiting)
    yield waiting
    unregister_role_source("approver")


def test_registered_source_derives_approver(approver_source: set[uuid.UUID],
                                            session_factory: sessionmaker[Session]) -> None:
    ada = add_person(session_factory, "E1")
    assert "approver" not in _roles(session_factory, ada)
    approver_source.add(ada)
    assert _roles(session_factory, ada) == {"requester", "approver"}
    assert "approver" in registered_role_sources()


@pytest.mark.parametrize("name", ["administrator", "auditor", "requester", "superuser"])
def test_only_unbuilt_derived_roles_may_be_registered(name: str) -> None:
    with pytest.raises(ValueError, match="may have a registered source"):
        register_role_source(name, lambda _s, _i: True)
    assert name not in registered_role_sources()


def test_roles_are_computed_in_two_queries(engine: Engine,
                                           session_factory: sessionmaker[Session]) -> None:
    boss = add_person(session_factory, "B1")
    add_person(session_factory, "R1", manager_id=boss)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with unit_of_work(session_factory) as session:
        session.connection()  # open the transaction before counting
        event.listen(engine, "before_cursor_execute", count)
        try:
            roles = service_roles_of(session, boss)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert roles == {"requester", "manager"}
    assert len(statements) == 2
