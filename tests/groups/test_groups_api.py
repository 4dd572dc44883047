"""The /groups API: teams and resolution groups, their members, and the refusals."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.models.audit import AuditEvent
from tests.conftest import make_token

MISSING = "00000000-0000-0000-0000-000000000001"


def _identity(client: TestClient, headers: dict[str, str], employee_id: str) -> str:
    resp = client.post("/identities", headers=headers, json={
        "employee_id": employee_id, "given_name": "Grace", "family_name": f"Hopper{employee_id}",
        "email": f"{employee_id.lower()}@example.com"})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _group(client: TestClient, headers: dict[str, str], name: str, **extra: object) -> str:
    resp = client.post("/groups", headers=headers, json={"name": name, **extra})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _actions(factory: sessionmaker[Session], object_id: str) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent.action)
                                    .where(AuditEvent.object_id == object_id)
                                    .order_by(AuditEvent.seq)))


def test_create_read_update_delete_group_is_audited(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    owner = _identity(client, admin_headers, "G1")
    created = client.post("/groups", headers=admin_headers, json={
        "name": "IAM operations", "kind": "resolution", "description": "Works failed operations",
        "email": "iam-ops@example.com", "owner_id": owner})
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["kind"] == "resolution"
    assert group["member_count"] == 0
    patched = client.patch(f"/groups/{group['id']}", headers=admin_headers,
                           json={"description": "Second line"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "Second line"
    assert patched.json()["owner_id"] == owner
    assert client.delete(f"/groups/{group['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/groups/{group['id']}", headers=admin_headers).status_code == 404
    assert _actions(session_factory, group["id"]) == ["group.create", "group.update",
                                                      "group.delete"]


def test_members_are_added_listed_counted_and_removed(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    group = _group(client, admin_headers, "Payroll team")
    people = [_identity(client, admin_headers, f"M{n}") for n in range(3)]
    for person in people:
        added = client.post(f"/groups/{group}/members", headers=admin_headers,
                            json={"identity_id": person})
        assert added.status_code == 201, added.text
        assert added.json() == {"group_id": group, "identity_id": person}
    assert client.get(f"/groups/{group}", headers=admin_headers).json()["member_count"] == 3

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/groups/{group}/members", params=params,
                          headers=admin_headers).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(people)

    removed = client.delete(f"/groups/{group}/members/{people[0]}", headers=admin_headers)
    assert removed.status_code == 204
    assert client.get(f"/groups/{group}", headers=admin_headers).json()["member_count"] == 2
    again = client.delete(f"/groups/{group}/members/{people[0]}", headers=admin_headers)
    assert again.status_code == 404
    assert _actions(session_factory, group).count("group.member_add") == 3
    assert _actions(session_factory, group).count("group.member_remove") == 1


def test_adding_a_member_twice_is_409(client: TestClient, admin_headers: dict[str, str]) -> None:
    group = _group(client, admin_headers, "Helpdesk")
    person = _identity(client, admin_headers, "D1")
    assert client.post(f"/groups/{group}/members", headers=admin_headers,
                       json={"identity_id": person}).status_code == 201
    again = client.post(f"/groups/{group}/members", headers=admin_headers,
                        json={"identity_id": person})
    assert again.status_code == 409
    assert "already a member" in again.json()["detail"]


def test_adding_a_missing_identity_is_422_naming_identity_id(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    group = _group(client, admin_headers, "Helpdesk")
    resp = client.post(f"/groups/{group}/members", headers=admin_headers,
                       json={"identity_id": MISSING})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "identity_id"


def test_members_of_a_missing_group_is_404(client: TestClient,
                                           admin_headers: dict[str, str]) -> None:
    assert client.get(f"/groups/{uuid.uuid4()}/members",
                      headers=admin_headers).status_code == 404


def test_dangling_owner_is_422_naming_owner_id(client: TestClient,
                                               admin_headers: dict[str, str]) -> None:
    resp = client.post("/groups", headers=admin_headers, json={"name": "X", "owner_id": MISSING})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "owner_id"


def test_unknown_field_and_unknown_kind_are_422(client: TestClient,
                                                admin_headers: dict[str, str]) -> None:
    extra = client.post("/groups", headers=admin_headers, json={"name": "X", "colour": "red"})
    assert extra.status_code == 422
    assert extra.json()["errors"][0]["field"] == "colour"
    kind = client.post("/groups", headers=admin_headers, json={"name": "X", "kind": "club"})
    assert kind.status_code == 422
    assert kind.json()["errors"][0]["field"] == "kind"


def test_duplicate_group_name_is_409(client: TestClient, admin_headers: dict[str, str]) -> None:
    _group(client, admin_headers, "Finance")
    resp = client.post("/groups", headers=admin_headers, json={"name": "finance"})
    assert resp.status_code == 409
    assert "already exists" in resp.json()["detail"]


def test_list_filters_by_kind_and_text(client: TestClient, admin_headers: dict[str, str]) -> None:
    _group(client, admin_headers, "Network team")
    _group(client, admin_headers, "LDAP resolvers", kind="resolution")
    _group(client, admin_headers, "Entra resolvers", kind="resolution",
           description="cloud directory")
    resolution = client.get("/groups", params={"kind": "resolution"},
                            headers=admin_headers).json()
    assert sorted(g["name"] for g in resolution["items"]) == ["Entra resolvers",
                                                              "LDAP resolvers"]
    text = client.get("/groups", params={"q": "CLOUD"}, headers=admin_headers).json()
    assert [g["name"] for g in text["items"]] == ["Entra resolvers"]


def test_deleting_resolution_group_of_an_application_is_409_naming_it(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    group = _group(client, admin_headers, "Directory resolvers", kind="resolution")
    app = client.post("/applications", headers=admin_headers, json={
        "name": "Corporate LDAP", "connector_kind": "ldap", "resolution_group_id": group})
    assert app.status_code == 201, app.text
    resp = client.delete(f"/groups/{group}", headers=admin_headers)
    assert resp.status_code == 409
    body = resp.json()
    assert "Corporate LDAP" in body["detail"]
    assert "resolution group" in body["detail"]
    assert body["applications"] == 1
    assert client.get(f"/groups/{group}", headers=admin_headers).status_code == 200
    demote = client.patch(f"/groups/{group}", headers=admin_headers, json={"kind": "team"})
    assert demote.status_code == 409


def test_auditor_reads_groups_but_cannot_change_them(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    group = _group(client, admin_headers, "Readers")
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "auditor",
                                                       ["auditor"])}
    assert client.get(f"/groups/{group}", headers=auditor).status_code == 200
    assert client.patch(f"/groups/{group}", headers=auditor,
                        json={"description": "x"}).status_code == 403
    assert client.post("/groups", headers=auditor, json={"name": "Y"}).status_code == 403
