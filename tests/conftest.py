"""Fixtures shared by the whole suite: databases on both backends, app, clock, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.service import install_sealer
from idgov.audit.signing import Signer, generate_signer
from idgov.auth import service as auth_service
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import make_session_factory, unit_of_work
from idgov.main import create_app
from idgov.types import Actor
from tests import databases

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def _pg_scratch() -> Iterator[databases.PostgresScratch | None]:
    if "postgresql" not in databases.backends():
        yield None
        return
    base = databases.pg_base_url()
    if base is None:
        yield None
        return
    scratch = databases.PostgresScratch(base)
    yield scratch
    scratch.drop()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> databases.SqliteTemplate:
    return databases.SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(params=databases.backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path,
           _sqlite_template: databases.SqliteTemplate,
           _pg_scratch: databases.PostgresScratch | None) -> Iterator[str]:
    """The URL of an empty, migrated database; the test is run once per backend."""
    backend = request.param
    if backend == "sqlite":
        if request.node.get_closest_marker("postgres_only"):
            pytest.skip("PostgreSQL-only test")
        yield _sqlite_template.copy_to(tmp_path)
        return
    if _pg_scratch is None:
        databases.missing("PostgreSQL")
        return
    yield _pg_scratch.url
    _pg_scratch.reset()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = databases.make_test_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def signer() -> Signer:
    return generate_signer()


@pytest.fixture
def session_factory(engine: Engine, signer: Signer) -> sessionmaker[Session]:
    factory = make_session_factory(engine)
    install_sealer(factory, signer)
    return factory


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var")


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FixedClock, signer: Signer) -> FastAPI:
    return create_app(settings, engine=engine, clock=clock, signer=signer)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def make_token(factory: sessionmaker[Session], clock: FixedClock, name: str,
               roles: list[str]) -> str:
    """A fresh service principal holding ``roles`` and an API token for it."""
    with unit_of_work(factory) as session:
        principal = auth_service.ensure_principal(session, name=name, roles=roles,
                                                  actor=Actor.system("tests"), clock=clock)
        text, _row = auth_service.issue_token(session, principal=principal, name=name,
                                              roles=roles, expires_at=None,
                                              actor=Actor.system("tests"), clock=clock)
    return text


@pytest.fixture
def admin_headers(session_factory: sessionmaker[Session], clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(session_factory, clock, "test-admin",
                                                    ["administrator"])}


class PersonHeaders(dict[str, dict[str, str]]):
    """Bearer headers for people, by identity id (``headers[str(identity_id)]``)."""

    def __missing__(self, identity_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer person:{identity_id}"}


@pytest.fixture
def people(app: FastAPI) -> PersonHeaders:
    """Sign people in through a stand-in for the OIDC issuer.

    OIDC itself (JWTs, JWKS over HTTP) is tested in tests/auth; here the bearer text
    ``person:<identity id>`` names the person, and their service roles are derived from the
    data exactly as for a real sign-in (``person_roles``: requester, manager, owner, approver
    and explicit grants). A person who is not active is refused, as with OIDC.
    """
    import uuid

    from idgov.auth.caller import Caller
    from idgov.auth.roles import person_roles
    from idgov.errors import Forbidden
    from idgov.models.identity import Identity

    def resolve(session: Session, token: str) -> Caller:
        identity_id = uuid.UUID(token.removeprefix("person:"))
        found = person_roles(session, identity_id)
        identity = session.get(Identity, identity_id)
        if found is None or identity is None or not found.active:
            raise Forbidden("no active identity")
        return Caller.build(kind="oidc", name=identity.display_name, roles=found.roles,
                            identity_id=identity_id)

    app.state.ctx.oidc = resolve
    return PersonHeaders()
