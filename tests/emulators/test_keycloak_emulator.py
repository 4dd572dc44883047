"""The Keycloak emulator answers as Keycloak's Admin REST API documents (request and response
shapes, status codes per verb, refusals), so that the connector's tests prove something."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.emulators.keycloak import KeycloakEmulator

SECRET = "emulator-test-secret"
USERS = "/admin/realms/idgov/users"


@pytest.fixture
def emulator() -> KeycloakEmulator:
    return KeycloakEmulator(realm="idgov", client_id="provisioner", client_secret=SECRET)


@pytest.fixture
def http(emulator: KeycloakEmulator) -> Iterator[TestClient]:
    with TestClient(emulator.app, base_url="http://kc.test") as client:
        yield client


def token(http: TestClient, **form: str) -> Any:
    body = {"grant_type": "client_credentials", "client_id": "provisioner",
            "client_secret": SECRET, "code": "", "redirect_uri": "", "scope": "openid", **form}
    return http.post("/realms/idgov/protocol/openid-connect/token", data=body)


@pytest.fixture
def auth(http: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(http).json()['access_token']}"}


def test_client_credentials_token_shape(http: TestClient) -> None:
    answer = token(http)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert "refresh_token" not in body  # Keycloak's default for client credentials
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"client_secret": "wrong"}, 401, "unauthorized_client"),
    ({"client_id": "nobody"}, 401, "invalid_client"),
    ({"grant_type": "magic"}, 400, "unsupported_grant_type"),
    ({"grant_type": "refresh_token", "refresh_token": "stale"}, 400, "invalid_grant"),
])
def test_token_refusals(http: TestClient, form: dict[str, str], status: int,
                        error: str) -> None:
    answer = token(http, **form)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert SECRET not in answer.text


def test_password_grant_gives_a_refresh_token(http: TestClient,
                                              emulator: KeycloakEmulator) -> None:
    emulator.add_user("admin", realm="master", password="pw", admin=True)
    answer = http.post("/realms/master/protocol/openid-connect/token", data={
        "grant_type": "password", "client_id": "admin-cli", "username": "admin",
        "password": "pw"})
    assert answer.status_code == 200
    refreshed = http.post("/realms/master/protocol/openid-connect/token", data={
        "grant_type": "refresh_token", "client_id": "admin-cli",
        "refresh_token": answer.json()["refresh_token"]})
    assert refreshed.status_code == 200
    wrong = http.post("/realms/master/protocol/openid-connect/token", data={
        "grant_type": "password", "client_id": "admin-cli", "username": "admin",
        "password": "nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_grant")


def test_bearer_token_required(http: TestClient, emulator: KeycloakEmulator,
                               auth: dict[str, str]) -> None:
    assert http.get(USERS).status_code == 401
    assert http.get(USERS, headers={"Authorization": "Bearer made-up"}).status_code == 401
    assert http.get(USERS, headers=auth).status_code == 200
    emulator.expire_tokens()
    assert http.get(USERS, headers=auth).status_code == 401
    emulator.set_client_admin("provisioner", False)
    fresh = {"Authorization": f"Bearer {token(http).json()['access_token']}"}
    assert http.get(USERS, headers=fresh).status_code == 403


def test_create_user_201_location_and_lower_case(http: TestClient,
                                                 auth: dict[str, str]) -> None:
    answer = http.post(USERS, headers=auth, json={
        "username": "JDoe", "email": "J.Doe@Example.org", "enabled": True,
        "firstName": "J", "attributes": {"dept": ["Sales"]}})
    assert answer.status_code == 201
    assert answer.content == b""
    user_id = answer.headers["location"].rsplit("/", 1)[1]
    assert answer.headers["location"] == f"http://kc.test{USERS}/{user_id}"
    user = http.get(f"{USERS}/{user_id}", headers=auth).json()
    assert (user["username"], user["email"], user["enabled"]) == (
        "jdoe", "j.doe@example.org", True)
    assert user["attributes"] == {"dept": ["Sales"]}


@pytest.mark.parametrize(("payload", "status", "message"), [
    ({"username": "taken"}, 409, "User exists with same username"),
    ({"username": "TAKEN"}, 409, "User exists with same username"),
    ({"username": "other", "email": "taken@example.org"}, 409, "User exists with same email"),
    ({"username": "other", "nickname": "x"}, 400, 'Unrecognized field "nickname"'),
    ({"email": "x@example.org"}, 400, "error-user-attribute-required"),
    ({"username": "other", "email": "not-an-email"}, 400, "error-invalid-email"),
    ({"username": "other", "attributes": {"dept": "Sales"}}, 400,
     "unable to read contents from stream"),
])
def test_create_user_refusals(http: TestClient, emulator: KeycloakEmulator,
                              auth: dict[str, str], payload: dict[str, Any], status: int,
                              message: str) -> None:
    emulator.add_user("taken", email="taken@example.org")
    answer = http.post(USERS, headers=auth, json=payload)
    assert answer.status_code == status
    assert answer.json()["errorMessage"] == message
    assert emulator.user_by_username("other") is None


def test_search_exact_and_paging(http: TestClient, emulator: KeycloakEmulator,
                                 auth: dict[str, str]) -> None:
    for name in ("anna", "annabel", "bob"):
        emulator.add_user(name)
    names = [u["username"] for u in http.get(USERS, headers=auth,
                                             params={"username": "anna"}).json()]
    assert names == ["anna", "annabel"]
    names = [u["username"] for u in http.get(USERS, headers=auth, params={
        "username": "ANNA", "exact": "True"}).json()]
    assert names == ["anna"]
    names = [u["username"] for u in http.get(USERS, headers=auth, params={
        "first": 1, "max": 1}).json()]
    assert names == ["annabel"]
    assert http.get(f"{USERS}/count", headers=auth).json() == 3


def test_update_204_partial_and_username_read_only(http: TestClient,
                                                   emulator: KeycloakEmulator,
                                                   auth: dict[str, str]) -> None:
    user_id = emulator.add_user("kim", first_name="Kim", attributes={"a": ["1"]})
    answer = http.put(f"{USERS}/{user_id}", headers=auth, json={"enabled": False})
    assert (answer.status_code, answer.content) == (204, b"")
    user = emulator.user(user_id)
    assert user is not None
    assert (user.enabled, user.first_name, user.attributes) == (False, "Kim", {"a": ["1"]})
    renamed = http.put(f"{USERS}/{user_id}", headers=auth, json={"username": "kimberly"})
    assert renamed.status_code == 400
    missing = http.put(f"{USERS}/00000000-0000-0000-0000-000000000000", headers=auth,
                       json={"enabled": True})
    assert missing.status_code == 404


def test_delete_204_then_404(http: TestClient, emulator: KeycloakEmulator,
                             auth: dict[str, str]) -> None:
    user_id = emulator.add_user("gone")
    assert http.delete(f"{USERS}/{user_id}", headers=auth).status_code == 204
    assert http.delete(f"{USERS}/{user_id}", headers=auth).status_code == 404
    assert http.get(f"{USERS}/{user_id}", headers=auth).json() == {"error": "User not found"}


def test_group_membership(http: TestClient, emulator: KeycloakEmulator,
                          auth: dict[str, str]) -> None:
    user_id = emulator.add_user("member")
    created = http.post("/admin/realms/idgov/groups", headers=auth, json={"name": "ops"})
    assert created.status_code == 201
    group_id = created.headers["location"].rsplit("/", 1)[1]
    again = http.post("/admin/realms/idgov/groups", headers=auth, json={"name": "ops"})
    assert again.status_code == 409
    membership = f"{USERS}/{user_id}/groups/{group_id}"
    for _ in range(2):
        assert http.put(membership, headers=auth).status_code == 204
    members = http.get(f"/admin/realms/idgov/groups/{group_id}/members", headers=auth).json()
    assert [m["username"] for m in members] == ["member"]
    groups = http.get(f"{USERS}/{user_id}/groups", headers=auth).json()
    assert groups == [{"id": group_id, "name": "ops", "path": "/ops"}]
    for _ in range(2):
        assert http.delete(membership, headers=auth).status_code == 204
    assert emulator.group_members(group_id) == set()
    unknown = f"{USERS}/{user_id}/groups/00000000-0000-0000-0000-000000000000"
    assert http.put(unknown, headers=auth).status_code == 404


def test_role_mappings_need_matching_id_and_name(http: TestClient,
                                                 emulator: KeycloakEmulator,
                                                 auth: dict[str, str]) -> None:
    user_id = emulator.add_user("roleholder")
    role_id = emulator.add_realm_role("auditor")
    mappings = f"{USERS}/{user_id}/role-mappings/realm"
    wrong = http.post(mappings, headers=auth, json=[{"name": "auditor", "id": "other"}])
    assert (wrong.status_code, wrong.json()) == (404, {"error": "Role not found"})
    not_a_list = http.post(mappings, headers=auth, json={"name": "auditor", "id": role_id})
    assert not_a_list.status_code == 400
    role = http.get("/admin/realms/idgov/roles/auditor", headers=auth).json()
    assert role["id"] == role_id and role["clientRole"] is False
    assert http.post(mappings, headers=auth, json=[role]).status_code == 204
    assert [r["name"] for r in http.get(mappings, headers=auth).json()] == ["auditor"]
    holders = http.get("/admin/realms/idgov/roles/auditor/users", headers=auth).json()
    assert [u["id"] for u in holders] == [user_id]
    assert http.request("DELETE", mappings, headers=auth, json=[role]).status_code == 204
    assert http.get(mappings, headers=auth).json() == []


def test_clients_and_client_role_mappings(http: TestClient, emulator: KeycloakEmulator,
                                          auth: dict[str, str]) -> None:
    client_uuid = emulator.add_client("portal")
    emulator.add_client_role("portal", "viewer")
    user_id = emulator.add_user("viewer")
    found = http.get("/admin/realms/idgov/clients", headers=auth,
                     params={"clientId": "portal"}).json()
    assert [(c["id"], c["clientId"]) for c in found] == [(client_uuid, "portal")]
    assert http.get("/admin/realms/idgov/clients", headers=auth,
                    params={"clientId": "port"}).json() == []
    roles = http.get(f"/admin/realms/idgov/clients/{client_uuid}/roles", headers=auth).json()
    assert [(r["name"], r["clientRole"], r["containerId"]) for r in roles] == [
        ("viewer", True, client_uuid)]
    mappings = f"{USERS}/{user_id}/role-mappings/clients/{client_uuid}"
    assert http.post(mappings, headers=auth, json=roles).status_code == 204
    assert emulator.client_roles_of(user_id, "portal") == {"viewer"}
    assert http.request("DELETE", mappings, headers=auth, json=roles).status_code == 204
    assert emulator.client_roles_of(user_id, "portal") == set()


def test_wrong_verb_and_unknown_path(http: TestClient, auth: dict[str, str]) -> None:
    assert http.patch(USERS, headers=auth, json={}).status_code == 405
    assert http.get("/admin/realms/idgov/nowhere", headers=auth).status_code == 404


def test_json_body_required(http: TestClient, auth: dict[str, str]) -> None:
    answer = http.post(USERS, headers={**auth, "Content-Type": "text/plain"},
                       content=b"username=x")
    assert answer.status_code == 415


def test_injected_faults(http: TestClient, emulator: KeycloakEmulator,
                         auth: dict[str, str]) -> None:
    emulator.throttle(retry_after=9)
    throttled = http.get(USERS, headers=auth)
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "9")
    emulator.fail_next(500, {"error": "unknown_error"})
    assert http.get(USERS, headers=auth).status_code == 500
    emulator.down = True
    assert http.get(USERS, headers=auth).status_code == 503
    assert token(http).status_code == 503
    emulator.down = False
    assert http.get(USERS, headers=auth).status_code == 200
    assert ("GET", USERS) in emulator.calls
