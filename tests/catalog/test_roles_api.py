"""The /roles API: CRUD, filters, the role detail, and the deletion policy."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.catalog.factories import Api, add_assignment, add_identity, audit_actions


def test_create_read_update_delete_role_with_audit(
        api: Api, session_factory: sessionmaker[Session]) -> None:
    owner = add_identity(session_factory, "OWN1")
    role = api.ok("POST", "/roles", 201, json={"name": "Finance Clerk", "kind": "business",
                                                "owner_id": owner})
    assert role["requestable"] is True
    patched = api.ok("PATCH", f"/roles/{role['id']}", json={"description": "Accounts payable"})
    assert patched["description"] == "Accounts payable"
    api.ok("DELETE", f"/roles/{role['id']}", 204)
    assert api.client.get(f"/roles/{role['id']}", headers=api.headers).status_code == 404
    assert audit_actions(session_factory, role["id"]) == ["role.create", "role.update",
                                                          "role.delete"]


def test_duplicate_role_name_is_409_whatever_the_case(api: Api) -> None:
    api.role("Finance Clerk")
    resp = api.client.post("/roles", headers=api.headers, json={"name": "finance clerk"})
    assert resp.status_code == 409
    assert "already exists" in resp.json()["detail"]


def test_unknown_owner_is_422_naming_the_field(api: Api) -> None:
    resp = api.client.post("/roles", headers=api.headers,
                           json={"name": "X", "owner_id": "00000000-0000-0000-0000-000000000009"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "owner_id"


def test_list_filters_roles(api: Api, session_factory: sessionmaker[Session]) -> None:
    owner = add_identity(session_factory, "OWN1")
    api.role("Finance Clerk", owner_id=owner, description="Accounts payable desk")
    api.role("GL Reader", kind="technical")
    api.role("Old Role", requestable=False)

    def names(**params: object) -> list[str]:
        return sorted(r["name"] for r in api.ok("GET", "/roles", params=params)["items"])

    assert names(kind="technical") == ["GL Reader"]
    assert names(requestable=False) == ["Old Role"]
    assert names(owner_id=owner) == ["Finance Clerk"]
    assert names(q="payable") == ["Finance Clerk"]
    assert names(q="reader") == ["GL Reader"]


def test_role_detail_lists_active_inclusions_and_entitlements_with_links(api: Api) -> None:
    clerk, reader = api.role("Finance Clerk"), api.role("GL Reader", kind="technical")
    gl = api.entitlement("gl-read")
    link = api.include(clerk, reader)
    grant = api.grant(clerk, gl)
    detail = api.ok("GET", f"/roles/{clerk}")
    assert detail["included_roles"] == [{
        "link_id": link["id"], "valid_from": link["valid_from"], "valid_until": None,
        "role": {"id": reader, "name": "GL Reader", "kind": "technical"}}]
    assert [(e["link_id"], e["entitlement"]["name"]) for e in detail["entitlements"]] == [
        (grant["id"], "gl-read")]


def test_deleting_role_with_active_assignments_is_409_with_count(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    role = api.role("Finance Clerk")
    person = add_identity(session_factory, "E1")
    add_assignment(session_factory, identity_id=person, role_id=role, valid_from=clock.now())
    # A revoked one and an expired one are not active.
    add_assignment(session_factory, identity_id=person, role_id=role,
                   valid_from=clock.now() - timedelta(days=9), revoked_at=clock.now())
    add_assignment(session_factory, identity_id=person, role_id=role,
                   valid_from=clock.now() - timedelta(days=9),
                   valid_until=clock.now() - timedelta(days=1))
    resp = api.client.delete(f"/roles/{role}", headers=api.headers)
    assert resp.status_code == 409
    assert resp.json()["active_assignments"] == 1
    assert resp.json()["title"] == "Object in use"


def test_deleting_role_with_ended_composition_history_is_refused(api: Api) -> None:
    clerk, reader = api.role("Finance Clerk"), api.role("GL Reader")
    api.include(clerk, reader)
    api.ok("DELETE", f"/roles/{clerk}/included-roles/{reader}", params={"reason": "redesign"})
    for role in (clerk, reader):
        resp = api.client.delete(f"/roles/{role}", headers=api.headers)
        assert resp.status_code == 409
        assert resp.json()["composition_links"] == 1
        assert "retire it with requestable=false" in resp.json()["detail"]


def test_retiring_a_role_takes_it_out_of_the_requestable_catalog(api: Api) -> None:
    role = api.role("Finance Clerk")
    api.ok("PATCH", f"/roles/{role}", json={"requestable": False})
    listed = api.ok("GET", "/roles", params={"requestable": True})["items"]
    assert role not in [r["id"] for r in listed]


def test_null_for_a_required_field_is_422(api: Api) -> None:
    role = api.role("Finance Clerk")
    resp = api.client.patch(f"/roles/{role}", headers=api.headers, json={"name": None})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "name"
