"""The /applications API: target systems, their write-only credentials, and the refusals."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.applications import service
from idgov.applications.crypto import CredentialCipher
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.audit import AuditEvent
from idgov.models.catalog import Entitlement
from tests.applications.helpers import MISSING, make_application, make_identity
from tests.conftest import make_token

SECRET = "s3cr3t-bind-Pa55word-7f1c"
OTHER_SECRET = "second-secret-9a2b"


def _audit_text(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        events = session.scalars(select(AuditEvent)).all()
        return json.dumps([[e.before, e.after, e.context] for e in events])


def _stored_token(factory: sessionmaker[Session], application_id: str) -> bytes | None:
    with factory() as session:
        return session.scalar(select(Application.credentials_encrypted)
                              .where(Application.id == uuid.UUID(application_id)))


def test_credentials_are_write_only_and_never_in_responses_or_audit(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    created = client.post("/applications", headers=admin_headers, json={
        "name": "Corporate LDAP", "connector_kind": "ldap", "risk": "high",
        "settings": {"url": "ldap://ldap.example.com", "base_dn": "dc=example,dc=com"},
        "credentials": {"bind_dn": "cn=admin", "bind_password": SECRET}})
    assert created.status_code == 201, created.text
    app = created.json()
    assert app["has_credentials"] is True
    assert "credentials" not in app
    assert app["settings"]["base_dn"] == "dc=example,dc=com"
    responses = [
        created,
        client.get(f"/applications/{app['id']}", headers=admin_headers),
        client.get("/applications", headers=admin_headers),
        client.patch(f"/applications/{app['id']}", headers=admin_headers,
                     json={"credentials": {"bind_dn": "cn=admin", "bind_password": OTHER_SECRET}}),
    ]
    for resp in responses:
        assert resp.status_code in (200, 201)
        assert SECRET not in resp.text and OTHER_SECRET not in resp.text
    audit = _audit_text(session_factory)
    assert SECRET not in audit and OTHER_SECRET not in audit
    assert "credentials_encrypted" not in audit
    with session_factory() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.object_id == app["id"])
                                 .order_by(AuditEvent.seq)).all()
        assert [e.action for e in events] == ["application.create", "application.update"]
        assert all(e.after is not None and e.after["credentials_changed"] is True
                   for e in events)


def test_stored_credentials_are_ciphertext_that_decrypts_to_what_was_given(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], settings: Settings) -> None:
    app_id = make_application(client, admin_headers, "Entra", connector_kind="entra",
                              credentials={"client_secret": SECRET})
    token = _stored_token(session_factory, app_id)
    assert token is not None
    assert SECRET.encode() not in token
    assert b"client_secret" not in token
    cipher = CredentialCipher.from_file(settings.secret_key_path)
    with unit_of_work(session_factory) as session:
        plain = service.decrypt_credentials(session, application_id=uuid.UUID(app_id),
                                            cipher=cipher)
    assert plain == {"client_secret": SECRET}


def test_key_file_is_created_private_on_first_use(
        client: TestClient, admin_headers: dict[str, str], settings: Settings) -> None:
    assert not settings.secret_key_path.exists()
    make_application(client, admin_headers, "Keycloak", connector_kind="keycloak",
                     credentials={"client_secret": SECRET})
    assert settings.secret_key_path.stat().st_mode & 0o777 == 0o600


def test_null_credentials_clear_them_and_omitting_them_keeps_them(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    app_id = make_application(client, admin_headers, "LDAP", credentials={"password": SECRET})
    kept = client.patch(f"/applications/{app_id}", headers=admin_headers, json={"risk": "low"})
    assert kept.json()["has_credentials"] is True
    cleared = client.patch(f"/applications/{app_id}", headers=admin_headers,
                           json={"credentials": None})
    assert cleared.status_code == 200
    assert cleared.json()["has_credentials"] is False
    assert _stored_token(session_factory, app_id) is None
    with session_factory() as session:
        last = session.scalars(select(AuditEvent).where(AuditEvent.object_id == app_id)
                               .order_by(AuditEvent.seq.desc())).first()
        assert last is not None and last.after is not None
        assert last.after["credentials_changed"] is True
        assert last.after["has_credentials"] is False


def test_empty_credentials_are_refused(client: TestClient,
                                       admin_headers: dict[str, str]) -> None:
    resp = client.post("/applications", headers=admin_headers,
                       json={"name": "X", "connector_kind": "manual", "credentials": {}})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "credentials"


def test_secret_looking_settings_are_refused_pointing_at_credentials(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    resp = client.post("/applications", headers=admin_headers, json={
        "name": "Entra", "connector_kind": "entra",
        "settings": {"tenant_id": "t1", "clientSecret": SECRET,
                     "graph": {"api_key": "k"}, "token_endpoint": "https://login/token"}})
    assert resp.status_code == 422
    body = resp.json()
    assert sorted(e["field"] for e in body["errors"]) == ["settings.clientSecret",
                                                          "settings.graph.api_key"]
    assert "credentials" in body["detail"]
    assert SECRET not in resp.text
    app_id = make_application(client, admin_headers, "LDAP")
    patch = client.patch(f"/applications/{app_id}", headers=admin_headers,
                         json={"settings": {"bind_password": SECRET}})
    assert patch.status_code == 422
    assert patch.json()["errors"][0]["field"] == "settings.bind_password"


def test_unknown_field_is_422(client: TestClient, admin_headers: dict[str, str]) -> None:
    resp = client.post("/applications", headers=admin_headers,
                       json={"name": "X", "connector_kind": "ldap", "password": SECRET})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "password"
    assert SECRET not in resp.text


def test_dangling_owner_and_group_are_422_naming_the_field(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    owner = client.post("/applications", headers=admin_headers,
                        json={"name": "X", "connector_kind": "ldap", "owner_id": MISSING})
    assert owner.status_code == 422
    assert owner.json()["errors"][0]["field"] == "owner_id"
    group = client.post("/applications", headers=admin_headers, json={
        "name": "X", "connector_kind": "ldap", "resolution_group_id": MISSING})
    assert group.status_code == 422
    assert group.json()["errors"][0]["field"] == "resolution_group_id"


def test_a_team_cannot_be_a_resolution_group(client: TestClient,
                                             admin_headers: dict[str, str]) -> None:
    team = client.post("/groups", headers=admin_headers, json={"name": "Sales"}).json()["id"]
    resp = client.post("/applications", headers=admin_headers, json={
        "name": "X", "connector_kind": "ldap", "resolution_group_id": team})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "resolution_group_id"


def test_duplicate_application_name_is_409(client: TestClient,
                                           admin_headers: dict[str, str]) -> None:
    make_application(client, admin_headers, "Payroll")
    resp = client.post("/applications", headers=admin_headers,
                       json={"name": "Payroll", "connector_kind": "manual"})
    assert resp.status_code == 409


def test_deleting_application_with_accounts_and_entitlements_is_409_with_counts(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    app_id = make_application(client, admin_headers, "LDAP")
    person = make_identity(client, admin_headers, "A1")
    assert client.post("/accounts", headers=admin_headers, json={
        "application_id": app_id, "native_id": "uid=a1", "identity_id": person,
    }).status_code == 201
    with unit_of_work(session_factory) as session:
        session.add(Entitlement(application_id=uuid.UUID(app_id), native_id="cn=staff",
                                name="Staff", created_at=datetime(2026, 1, 1, tzinfo=UTC),
                                updated_at=datetime(2026, 1, 1, tzinfo=UTC)))
    resp = client.delete(f"/applications/{app_id}", headers=admin_headers)
    assert resp.status_code == 409
    body = resp.json()
    assert (body["entitlements"], body["accounts"]) == (1, 1)
    assert "1 entitlement(s) and 1 account(s)" in body["detail"]


def test_unused_application_is_deleted_and_audited(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    app_id = make_application(client, admin_headers, "Old", credentials={"token": SECRET})
    assert client.delete(f"/applications/{app_id}", headers=admin_headers).status_code == 204
    assert client.get(f"/applications/{app_id}", headers=admin_headers).status_code == 404
    with session_factory() as session:
        actions = session.scalars(select(AuditEvent.action)
                                  .where(AuditEvent.object_id == app_id)).all()
    assert sorted(actions) == ["application.create", "application.delete"]
    assert SECRET not in _audit_text(session_factory)


def test_list_filters_by_kind_risk_and_text(client: TestClient,
                                            admin_headers: dict[str, str]) -> None:
    make_application(client, admin_headers, "Directory", risk="high")
    make_application(client, admin_headers, "Cloud tenant", connector_kind="entra", risk="high")
    make_application(client, admin_headers, "Wiki", connector_kind="manual", risk="low",
                     description="team pages")

    def names(**params: object) -> list[str]:
        page = client.get("/applications", params=params, headers=admin_headers).json()
        return sorted(a["name"] for a in page["items"])

    assert names(risk="high") == ["Cloud tenant", "Directory"]
    assert names(connector_kind="entra") == ["Cloud tenant"]
    assert names(q="PAGES") == ["Wiki"]
    assert client.get("/applications", params={"risk": "extreme"},
                      headers=admin_headers).status_code == 422


def test_requester_reads_the_catalog_but_not_credentials_and_cannot_write(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    app_id = make_application(client, admin_headers, "LDAP", credentials={"password": SECRET})
    requester = {"Authorization": "Bearer " + make_token(session_factory, clock, "someone",
                                                         ["requester"])}
    got = client.get(f"/applications/{app_id}", headers=requester)
    assert got.status_code == 200
    assert got.json()["has_credentials"] is True
    assert SECRET not in got.text
    assert client.patch(f"/applications/{app_id}", headers=requester,
                        json={"risk": "low"}).status_code == 403


def test_openapi_marks_credentials_write_only_and_reads_without_them(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["ApplicationCreate"]["properties"]["credentials"]["writeOnly"] is True
    assert "credentials" not in schemas["ApplicationRead"]["properties"]
    assert "has_credentials" in schemas["ApplicationRead"]["properties"]
