"""Discovery endpoints and the SCIM error format for authentication and authorisation."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.scim import schemas
from tests.conftest import make_token
from tests.scim.conftest import SCIM
from tests.scim.test_users_api import error_of


def test_service_provider_config(scim: TestClient) -> None:
    answer = scim.get("/ServiceProviderConfig")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(SCIM)
    config = answer.json()
    assert config["schemas"] == [schemas.SPC]
    assert config["patch"]["supported"] and config["filter"]["supported"]
    assert config["etag"]["supported"] and config["sort"]["supported"]
    assert not config["bulk"]["supported"]


def test_resource_types_and_schemas(scim: TestClient) -> None:
    types = scim.get("/ResourceTypes").json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    user = scim.get("/ResourceTypes/User").json()
    assert user["schemaExtensions"] == [{"schema": schemas.ENTERPRISE, "required": False}]
    assert error_of(scim.get("/ResourceTypes/Printer")) == (404, None)
    listed = scim.get("/Schemas").json()
    assert {s["id"] for s in listed["Resources"]} == {schemas.USER, schemas.ENTERPRISE,
                                                      schemas.GROUP}
    enterprise = scim.get(f"/Schemas/{schemas.ENTERPRISE}").json()
    assert {a["name"] for a in enterprise["attributes"]} >= {
        "employeeNumber", "manager", "department", "costCenter", "organization", "division"}
    assert error_of(scim.get("/Schemas/urn:nope")) == (404, None)


def test_unauthenticated_and_forbidden_are_scim_errors(
        scim_app: FastAPI, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    with TestClient(scim_app, base_url="http://testserver/scim/v2") as anonymous:
        answer = anonymous.get("/Users")
        assert error_of(answer) == (401, None)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    token = make_token(session_factory, clock, "auditor", ["auditor"])
    with TestClient(scim_app, base_url="http://testserver/scim/v2",
                    headers={"Authorization": f"Bearer {token}"}) as auditor:
        assert error_of(auditor.get("/Users")) == (403, None)
        assert error_of(auditor.post("/Users", json={})) == (403, None)
