"""SCIM fixtures: the router mounted on the test app, callers with scim:read/scim:write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth import permissions
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.identities import service as identities
from idgov.identities.schemas import IdentityCreate
from idgov.scim.endpoints import router
from idgov.types import Actor
from tests.conftest import make_token

SCIM = "application/scim+json"


@pytest.fixture(autouse=True)
def scim_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the lead adds them: scim:read and scim:write for hr-system and administrator."""
    caps = dict(permissions.ROLE_CAPABILITIES)
    for role in ("administrator", "hr-system"):
        caps[role] = caps[role] | {"scim:read", "scim:write"}
    monkeypatch.setattr(permissions, "ROLE_CAPABILITIES", caps)


@pytest.fixture
def scim_app(app: FastAPI) -> FastAPI:
    if not any(getattr(r, "path", "").startswith("/scim/v2") for r in app.routes):
        app.include_router(router)
    return app


@pytest.fixture
def scim(scim_app: FastAPI, session_factory: sessionmaker[Session],
         clock: FixedClock) -> Iterator[TestClient]:
    """A client calling /scim/v2 as an HR system."""
    token = make_token(session_factory, clock, "scim-hr", ["hr-system"])
    with TestClient(scim_app, raise_server_exceptions=False,
                    base_url="http://testserver/scim/v2",
                    headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def add_identity(factory: sessionmaker[Session], clock: FixedClock, **fields: Any) -> str:
    """An identity created by hand (not through SCIM); returns its id."""
    data: dict[str, Any] = {"given_name": "Given", "family_name": "Family"}
    data.update(fields)
    with unit_of_work(factory) as session:
        identity = identities.create_identity(session, identity_in=IdentityCreate(**data),
                                              actor=Actor.system("tests"), clock=clock)
        return str(identity.id)
