"""Access test fixtures: a catalog built through the API, people and assignments via the ORM."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth.caller import Caller
from tests.catalog.factories import Api, add_application


@pytest.fixture
def api(client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> Api:
    return Api(client, admin_headers, add_application(session_factory))


@pytest.fixture
def person_headers(app: FastAPI) -> dict[str, dict[str, str]]:
    """Bearer headers for people, by identity id, through a stand-in OIDC resolver.

    OIDC is a process boundary (the identity provider); the stand-in maps the bearer text
    ``person:<identity id>`` to a requester caller linked to that identity.
    """

    def resolve(_session: Session, token: str) -> Caller:
        identity_id = uuid.UUID(token.removeprefix("person:"))
        return Caller.build(kind="oidc", name=f"person {identity_id}",
                            roles=frozenset({"requester"}), identity_id=identity_id)

    app.state.ctx.oidc = resolve

    class Headers(dict[str, dict[str, str]]):
        def __missing__(self, identity_id: str) -> dict[str, str]:
            return {"Authorization": f"Bearer person:{identity_id}"}

    return Headers()
