"""The /accounts API: primary, service, shared and administrative accounts, and orphans."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.models.audit import AuditEvent
from tests.applications.helpers import MISSING, make_application, make_identity
from tests.conftest import make_token


def _account(client: TestClient, headers: dict[str, str], **body: object) -> str:
    resp = client.post("/accounts", headers=headers, json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_create_read_update_delete_account_is_audited(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    person = make_identity(client, admin_headers, "E1")
    created = client.post("/accounts", headers=admin_headers, json={
        "application_id": app, "native_id": "uid=e1,ou=people", "username": "e1",
        "identity_id": person, "attributes": {"shell": "/bin/bash"}})
    assert created.status_code == 201, created.text
    account = created.json()
    assert (account["account_type"], account["status"]) == ("primary", "active")
    assert client.get(f"/accounts/{account['id']}",
                      headers=admin_headers).json()["username"] == "e1"
    patched = client.patch(f"/accounts/{account['id']}", headers=admin_headers,
                           json={"status": "disabled"})
    assert patched.status_code == 200
    assert patched.json()["status"] == "disabled"
    assert client.delete(f"/accounts/{account['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/accounts/{account['id']}", headers=admin_headers).status_code == 404
    with session_factory() as session:
        actions = session.scalars(select(AuditEvent.action)
                                  .where(AuditEvent.object_id == account["id"])
                                  .order_by(AuditEvent.seq)).all()
    assert actions == ["account.create", "account.update", "account.delete"]


def test_second_primary_account_for_an_identity_is_409(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    other_app = make_application(client, admin_headers, "Entra", connector_kind="entra")
    person = make_identity(client, admin_headers, "E1")
    first = _account(client, admin_headers, application_id=app, native_id="uid=e1",
                     identity_id=person)
    resp = client.post("/accounts", headers=admin_headers, json={
        "application_id": app, "native_id": "uid=e1-again", "identity_id": person})
    assert resp.status_code == 409
    assert "already has a primary account" in resp.json()["detail"]
    assert resp.json()["account_id"] == first
    # Another application, or a non-primary account in the same one, is fine.
    _account(client, admin_headers, application_id=other_app, native_id="e1", identity_id=person)
    admin = _account(client, admin_headers, application_id=app, native_id="uid=e1-admin",
                     identity_id=person, account_type="administrative")
    promote = client.patch(f"/accounts/{admin}", headers=admin_headers,
                           json={"account_type": "primary"})
    assert promote.status_code == 409


def test_duplicate_native_id_in_one_application_is_409(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    other_app = make_application(client, admin_headers, "Other")
    _account(client, admin_headers, application_id=app, native_id="uid=x")
    resp = client.post("/accounts", headers=admin_headers,
                       json={"application_id": app, "native_id": "uid=x"})
    assert resp.status_code == 409
    assert "native_id" in resp.json()["detail"]
    _account(client, admin_headers, application_id=other_app, native_id="uid=x")


def test_service_account_needs_an_owner_or_identity(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    owner = make_identity(client, admin_headers, "O1")
    for kind in ("service", "shared", "administrative"):
        resp = client.post("/accounts", headers=admin_headers, json={
            "application_id": app, "native_id": f"svc-{kind}", "account_type": kind})
        assert resp.status_code == 422, kind
        assert resp.json()["errors"][0]["field"] == "owner_id"
    svc = _account(client, admin_headers, application_id=app, native_id="svc-backup",
                   account_type="service", owner_id=owner)
    unowned = client.patch(f"/accounts/{svc}", headers=admin_headers, json={"owner_id": None})
    assert unowned.status_code == 422


def test_primary_account_with_an_owner_but_no_identity_is_422(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    owner = make_identity(client, admin_headers, "O1")
    resp = client.post("/accounts", headers=admin_headers, json={
        "application_id": app, "native_id": "uid=who", "owner_id": owner})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "identity_id"


def test_orphans_are_primary_accounts_with_no_identity_and_no_owner(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    person = make_identity(client, admin_headers, "E1")
    owner = make_identity(client, admin_headers, "O1")
    orphan = _account(client, admin_headers, application_id=app, native_id="uid=ghost")
    _account(client, admin_headers, application_id=app, native_id="uid=e1", identity_id=person)
    _account(client, admin_headers, application_id=app, native_id="svc", owner_id=owner,
             account_type="service")

    def ids(**params: object) -> list[str]:
        page = client.get("/accounts", params=params, headers=admin_headers).json()
        return [a["native_id"] for a in page["items"]]

    assert ids(orphan="true") == ["uid=ghost"]
    assert sorted(ids(orphan="false")) == ["svc", "uid=e1"]
    assert ids(identity_id=person) == ["uid=e1"]
    assert ids(account_type="service") == ["svc"]
    assert sorted(ids(application_id=app)) == ["svc", "uid=e1", "uid=ghost"]
    # Reconciliation later links the orphan to its person.
    linked = client.patch(f"/accounts/{orphan}", headers=admin_headers,
                          json={"identity_id": owner})
    assert linked.status_code == 200
    assert ids(orphan="true") == []
    disabled = client.patch(f"/accounts/{orphan}", headers=admin_headers,
                            json={"status": "disabled"})
    assert disabled.status_code == 200
    assert ids(status="disabled") == ["uid=ghost"]


def test_dangling_references_are_422_naming_the_field(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    cases = {
        "application_id": {"application_id": MISSING, "native_id": "a"},
        "identity_id": {"application_id": app, "native_id": "a", "identity_id": MISSING},
        "owner_id": {"application_id": app, "native_id": "a", "account_type": "service",
                     "owner_id": MISSING},
    }
    for field, body in cases.items():
        resp = client.post("/accounts", headers=admin_headers, json=body)
        assert resp.status_code == 422, field
        assert resp.json()["errors"][0]["field"] == field


def test_unknown_fields_and_moving_accounts_are_422(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    app = make_application(client, admin_headers, "LDAP")
    resp = client.post("/accounts", headers=admin_headers,
                       json={"application_id": app, "native_id": "a", "password": "x"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "password"
    account = _account(client, admin_headers, application_id=app, native_id="a")
    move = client.patch(f"/accounts/{account}", headers=admin_headers,
                        json={"application_id": make_application(client, admin_headers, "B")})
    assert move.status_code == 422
    assert move.json()["errors"][0]["field"] == "application_id"


def test_catalog_reader_without_accounts_capability_is_403(
        client: TestClient, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    requester = {"Authorization": "Bearer " + make_token(session_factory, clock, "someone",
                                                         ["requester"])}
    assert client.get("/accounts", headers=requester).status_code == 403
