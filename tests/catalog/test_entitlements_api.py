"""The /entitlements API: CRUD, filters, references, uniqueness, and refused deletions."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.catalog.factories import (
    Api,
    add_application,
    add_assignment,
    add_identity,
    audit_actions,
)

MISSING = "00000000-0000-0000-0000-000000000001"


def test_create_read_update_delete_entitlement_with_audit(
        api: Api, session_factory: sessionmaker[Session]) -> None:
    created = api.ok("POST", "/entitlements", 201, json={
        "application_id": api.application_id, "native_id": "cn=ap-clerks,ou=groups",
        "name": "AP clerks", "risk": "high", "privileged": False})
    assert created["kind"] == "group"
    assert created["requestable"] is True
    got = api.ok("GET", f"/entitlements/{created['id']}")
    assert got["native_id"] == "cn=ap-clerks,ou=groups"
    patched = api.ok("PATCH", f"/entitlements/{created['id']}",
                     json={"privileged": True, "risk": "critical"})
    assert (patched["privileged"], patched["risk"]) == (True, "critical")
    api.ok("DELETE", f"/entitlements/{created['id']}", 204)
    assert api.client.get(f"/entitlements/{created['id']}",
                          headers=api.headers).status_code == 404
    assert audit_actions(session_factory, created["id"]) == [
        "entitlement.create", "entitlement.update", "entitlement.delete"]


def test_unknown_application_is_422_naming_the_field(api: Api) -> None:
    resp = api.client.post("/entitlements", headers=api.headers, json={
        "application_id": MISSING, "native_id": "x", "name": "x"})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["application_id"]


def test_duplicate_native_id_in_one_application_is_409(
        api: Api, session_factory: sessionmaker[Session]) -> None:
    api.entitlement("ap-clerks")
    resp = api.client.post("/entitlements", headers=api.headers, json={
        "application_id": api.application_id, "native_id": "cn=ap-clerks", "name": "again"})
    assert resp.status_code == 409
    assert "native_id 'cn=ap-clerks'" in resp.json()["detail"]
    other_app = add_application(session_factory, "HR system")
    resp = api.client.post("/entitlements", headers=api.headers, json={
        "application_id": other_app, "native_id": "cn=ap-clerks", "name": "same id elsewhere"})
    assert resp.status_code == 201


def test_renaming_native_id_onto_a_taken_one_is_409(api: Api) -> None:
    api.entitlement("one")
    two = api.entitlement("two")
    resp = api.client.patch(f"/entitlements/{two}", headers=api.headers,
                            json={"native_id": "cn=one"})
    assert resp.status_code == 409


def test_application_of_an_entitlement_cannot_change(api: Api) -> None:
    ent = api.entitlement("one")
    resp = api.client.patch(f"/entitlements/{ent}", headers=api.headers,
                            json={"application_id": api.application_id})
    assert resp.status_code == 422


def test_list_filters_entitlements(api: Api, session_factory: sessionmaker[Session]) -> None:
    api.entitlement("gl-read", risk="low")
    api.entitlement("payments-release", risk="critical", privileged=True)
    api.entitlement("vendor-write", risk="high", requestable=False, kind="app_role")
    other_app = add_application(session_factory, "HR system")
    api.ok("POST", "/entitlements", 201, json={"application_id": other_app,
                                                "native_id": "hr", "name": "hr-read"})

    def names(**params: object) -> list[str]:
        page = api.ok("GET", "/entitlements", params=params)
        return sorted(e["name"] for e in page["items"])

    assert names(application_id=api.application_id) == ["gl-read", "payments-release",
                                                         "vendor-write"]
    assert names(privileged=True) == ["payments-release"]
    assert names(requestable=False) == ["vendor-write"]
    assert names(kind="app_role") == ["vendor-write"]
    assert names(risk="critical") == ["payments-release"]
    assert names(q="PAY") == ["payments-release"]
    assert names(q="cn=gl") == ["gl-read"]


def test_deleting_entitlement_with_active_assignments_is_409_with_count(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ent = api.entitlement("gl-read")
    for n in range(2):
        person = add_identity(session_factory, f"E{n}")
        add_assignment(session_factory, identity_id=person, entitlement_id=ent,
                       valid_from=clock.now())
    resp = api.client.delete(f"/entitlements/{ent}", headers=api.headers)
    assert resp.status_code == 409
    body = resp.json()
    assert body["active_assignments"] == 2
    assert "2 active assignment(s)" in body["detail"]


def test_deleting_entitlement_with_only_ended_assignments_is_refused_as_history(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ent = api.entitlement("gl-read")
    person = add_identity(session_factory, "E1")
    add_assignment(session_factory, identity_id=person, entitlement_id=ent,
                   valid_from=clock.now() - timedelta(days=30),
                   valid_until=clock.now() - timedelta(days=1))
    resp = api.client.delete(f"/entitlements/{ent}", headers=api.headers)
    assert resp.status_code == 409
    body = resp.json()
    assert (body["active_assignments"], body["assignments"]) == (0, 1)
    assert "requestable=false" in body["detail"]


def test_deleting_entitlement_granted_by_a_role_is_refused(api: Api) -> None:
    ent = api.entitlement("gl-read")
    api.grant(api.role("Ledger Reader"), ent)
    resp = api.client.delete(f"/entitlements/{ent}", headers=api.headers)
    assert resp.status_code == 409
    assert resp.json()["composition_links"] == 1


def test_reading_the_catalog_needs_a_token_and_writing_needs_catalog_write(
        client: TestClient, api: Api, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    from tests.conftest import make_token

    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "aud",
                                                       ["auditor"])}
    assert client.get("/entitlements").status_code == 401
    assert client.get("/entitlements", headers=auditor).status_code == 200
    resp = client.post("/entitlements", headers=auditor, json={
        "application_id": api.application_id, "native_id": "x", "name": "x"})
    assert resp.status_code == 403
