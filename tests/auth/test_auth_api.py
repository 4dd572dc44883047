"""/me, /service-principals and /service-role-grants: behaviour, refusals and audit."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from tests.auth.conftest import add_person, bearer
from tests.conftest import make_token


def _actions(factory: sessionmaker[Session], object_id: str) -> list[str]:
    with unit_of_work(factory) as session:
        return list(session.scalars(select(AuditEvent.action)
                                    .where(AuditEvent.object_id == object_id)
                                    .order_by(AuditEvent.seq)))


def test_me_for_a_token_caller(client: TestClient, admin_headers: dict[str, str]) -> None:
    me = client.get("/me", headers=admin_headers).json()
    assert me["kind"] == "token"
    assert me["name"] == "test-admin"
    assert me["identity"] is None
    assert me["roles"] == ["administrator"]
    assert {"tokens:read", "tokens:write", "me:read"} <= set(me["capabilities"])


def test_me_needs_credentials(client: TestClient) -> None:
    assert client.get("/me").status_code == 401


def test_service_principal_create_read_update_and_audit(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    created = client.post("/service-principals", headers=admin_headers,
                          json={"name": "siem", "roles": ["auditor"],
                                "description": "SIEM pull"})
    assert created.status_code == 201, created.text
    sp = created.json()
    assert (sp["name"], sp["roles"], sp["disabled"]) == ("siem", ["auditor"], False)
    assert client.get(f"/service-principals/{sp['id']}",
                      headers=admin_headers).json()["description"] == "SIEM pull"
    patched = client.patch(f"/service-principals/{sp['id']}", headers=admin_headers,
                           json={"roles": ["auditor", "hr-system"], "description": None})
    assert patched.status_code == 200
    assert patched.json()["roles"] == ["auditor", "hr-system"]
    assert patched.json()["description"] is None
    names = [p["name"] for p in client.get("/service-principals", headers=admin_headers,
                                           params={"name": "siem"}).json()["items"]]
    assert names == ["siem"]
    assert _actions(session_factory, sp["id"]) == ["service_principal.create",
                                                   "service_principal.update"]


def test_duplicate_principal_name_is_409(client: TestClient,
                                         admin_headers: dict[str, str]) -> None:
    body = {"name": "hr-feed", "roles": ["hr-system"]}
    assert client.post("/service-principals", headers=admin_headers, json=body).status_code == 201
    assert client.post("/service-principals", headers=admin_headers, json=body).status_code == 409


def test_unknown_role_and_unknown_field_are_422(client: TestClient,
                                                admin_headers: dict[str, str]) -> None:
    bad_role = client.post("/service-principals", headers=admin_headers,
                           json={"name": "x", "roles": ["root"]})
    assert bad_role.status_code == 422
    assert bad_role.json()["errors"][0]["field"] == "roles.0"
    extra = client.post("/service-principals", headers=admin_headers,
                        json={"name": "x", "password": "p"})
    assert extra.status_code == 422


def test_unknown_principal_and_token_are_404(client: TestClient,
                                             admin_headers: dict[str, str]) -> None:
    missing = uuid.uuid4()
    assert client.get(f"/service-principals/{missing}", headers=admin_headers).status_code == 404
    assert client.patch(f"/service-principals/{missing}", headers=admin_headers,
                        json={"disabled": True}).status_code == 404
    assert client.get(f"/tokens/{missing}", headers=admin_headers).status_code == 404
    assert client.post(f"/tokens/{missing}/revoke", headers=admin_headers).status_code == 404
    unknown = client.post("/tokens", headers=admin_headers,
                          json={"principal_id": str(missing), "name": "x"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "principal_id"


def test_service_role_grant_lifecycle(client: TestClient, admin_headers: dict[str, str],
                                      session_factory: sessionmaker[Session]) -> None:
    ada = str(add_person(session_factory, "E1"))
    created = client.post("/service-role-grants", headers=admin_headers,
                          json={"identity_id": ada, "role": "auditor"})
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["granted_by"] == "service_principal:test-admin"
    again = client.post("/service-role-grants", headers=admin_headers,
                        json={"identity_id": ada, "role": "auditor"})
    assert again.status_code == 409
    listed = client.get("/service-role-grants", headers=admin_headers,
                        params={"identity_id": ada}).json()["items"]
    assert [g["role"] for g in listed] == ["auditor"]
    url = f"/service-role-grants/{grant['id']}"
    assert client.delete(url, headers=admin_headers).status_code == 204
    assert client.delete(url, headers=admin_headers).status_code == 404
    assert _actions(session_factory, grant["id"]) == ["service_role.grant",
                                                      "service_role.revoke"]


def test_grant_refuses_unknown_identity_and_derived_roles(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    unknown = client.post("/service-role-grants", headers=admin_headers,
                          json={"identity_id": str(uuid.uuid4()), "role": "auditor"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "identity_id"
    ada = str(add_person(session_factory, "E1"))
    derived = client.post("/service-role-grants", headers=admin_headers,
                          json={"identity_id": ada, "role": "manager"})
    assert derived.status_code == 422


def test_auditor_reads_callers_but_changes_nothing(
        client: TestClient, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    auditor = bearer(make_token(session_factory, clock, "audit-bot", ["auditor"]))
    assert client.get("/tokens", headers=auditor).status_code == 200
    assert client.get("/service-principals", headers=auditor).status_code == 200
    assert client.get("/service-role-grants", headers=auditor).status_code == 200
    refused = client.post("/service-principals", headers=auditor,
                          json={"name": "sneaky", "roles": ["administrator"]})
    assert refused.status_code == 403


def test_hr_system_cannot_see_tokens(client: TestClient, session_factory: sessionmaker[Session],
                                     clock: FixedClock) -> None:
    hr = bearer(make_token(session_factory, clock, "hr-feed", ["hr-system"]))
    assert client.get("/me", headers=hr).status_code == 200
    assert client.get("/tokens", headers=hr).status_code == 403
    assert client.get("/service-role-grants", headers=hr).status_code == 403
