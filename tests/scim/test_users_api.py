"""/scim/v2/Users over HTTP: RFC 7644's requests, and Entra ID's and Okta's."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.identity import Identity
from idgov.scim import schemas
from tests.scim.conftest import SCIM, add_identity

ENT = schemas.ENTERPRISE
PATCH = schemas.PATCH_OP


def error_of(response: Any) -> tuple[int, str | None]:
    assert response.headers["content-type"].startswith(SCIM), response.text
    body = response.json()
    assert body["schemas"] == [schemas.ERROR]
    assert body["status"] == str(response.status_code)
    return response.status_code, body.get("scimType")


def rfc_user(user_name: str = "bjensen", **extra: Any) -> dict[str, Any]:
    """RFC 7644 §3.3's creation request, with the enterprise extension."""
    body = {
        "schemas": [schemas.USER, ENT],
        "userName": user_name,
        "externalId": user_name,
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen",
                 "givenName": "Barbara"},
        "emails": [{"value": f"{user_name}@example.com", "type": "work", "primary": True}],
        ENT: {"employeeNumber": f"E-{user_name}", "department": "Tours"},
    }
    body.update(extra)
    return body


def test_rfc_create_then_read_with_etag(scim: TestClient) -> None:
    created = scim.post("/Users", json=rfc_user(), headers={"Content-Type": SCIM})
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith(SCIM)
    user = created.json()
    assert user["userName"] == "bjensen"
    assert user["active"] is True
    assert user[ENT]["employeeNumber"] == "E-bjensen"
    assert user["meta"]["resourceType"] == "User"
    assert created.headers["Location"] == user["meta"]["location"]
    assert created.headers["ETag"] == user["meta"]["version"]
    assert user["meta"]["version"].startswith('W/"')
    read = scim.get(f"/Users/{user['id']}")
    assert read.json() == user
    assert scim.get(f"/Users/{user['id']}",
                    headers={"If-None-Match": user["meta"]["version"]}).status_code == 304
    # userName is unique whatever its case (RFC 7643 §4.1.1)
    again = scim.post("/Users", json=rfc_user("BJENSEN") | {ENT: {"employeeNumber": "x"}})
    assert error_of(again) == (409, "uniqueness")


def test_entra_provisioning_cycle(scim: TestClient) -> None:
    """Entra's documented sequence: query by userName, create, update, disable, delete."""
    query = scim.get("/Users", params={"filter": 'userName eq "Test_User_ab6490ee@contoso.com"'})
    assert query.json() == {"schemas": [schemas.LIST_RESPONSE], "totalResults": 0,
                            "startIndex": 1, "itemsPerPage": 0, "Resources": []}
    body = {
        "schemas": [schemas.USER, ENT],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@contoso.com", "active": True,
        "emails": [{"primary": True, "type": "work",
                    "value": "Test_User_fd0ea19b@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": [],
    }
    created = scim.post("/Users", json=body)
    assert created.status_code == 201, created.text
    user = created.json()
    uid = user["id"]
    assert user["externalId"] == body["externalId"]
    found = scim.get("/Users", params={"filter": f'externalId eq "{body["externalId"]}"'})
    assert [r["id"] for r in found.json()["Resources"]] == [uid]
    # Entra's update: capitalised ops, value paths, manager as a plain id
    manager = scim.post("/Users", json=rfc_user("boss")).json()
    patch = {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "upd@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Add", "path": f"{ENT}:manager", "value": manager["id"]},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Oslo"},
        {"op": "Replace", "path": "title", "value": "Engineer"},
    ]}
    updated = scim.patch(f"/Users/{uid}", json=patch)
    assert updated.status_code == 200, updated.text
    user = updated.json()
    assert user["emails"][0]["value"] == "upd@contoso.com"
    assert user["name"]["familyName"] == "updatedFamilyName"
    assert user[ENT]["manager"]["value"] == manager["id"]
    assert user["addresses"][0]["locality"] == "Oslo"
    assert user["title"] == "Engineer"
    # Entra's soft delete: active "False" as a string
    disabled = scim.patch(f"/Users/{uid}", json={"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    enabled = scim.patch(f"/Users/{uid}", json={"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "True"}]})
    assert enabled.json()["active"] is True
    assert scim.delete(f"/Users/{uid}").status_code == 204
    assert error_of(scim.get(f"/Users/{uid}")) == (404, None)
    assert scim.get("/Users", params={"filter": 'userName eq "Test_User_ab6490ee@contoso.com"'}
                    ).json()["totalResults"] == 0


def test_okta_deactivate_and_reactivate(scim: TestClient, session_factory:
                                        sessionmaker[Session]) -> None:
    body = {"schemas": [schemas.USER], "userName": "isaac.brock@example.com",
            "name": {"givenName": "Isaac", "familyName": "Brock"},
            "emails": [{"primary": True, "value": "isaac.brock@example.com", "type": "work"}],
            "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": True}
    created = scim.post("/Users", json=body)
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    # the employee id falls back on externalId
    assert created.json()[ENT]["employeeNumber"] == "00ujl29u0le5T6Aj10h7"
    off = scim.patch(f"/Users/{uid}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"active": False}}]})
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    with unit_of_work(session_factory) as session:
        identity = session.get(Identity, uuid.UUID(uid))
        assert identity is not None
        assert identity.lifecycle_state == "terminated"
    on = scim.patch(f"/Users/{uid}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"active": True}}]})
    assert on.json()["active"] is True
    put = scim.put(f"/Users/{uid}", json={**body, "id": uid, "displayName": "Ike Brock"})
    assert put.status_code == 200, put.text
    assert put.json()["displayName"] == "Ike Brock"


def test_delete_then_post_again_is_a_rehire(scim: TestClient) -> None:
    user = scim.post("/Users", json=rfc_user("rehired")).json()
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    again = scim.post("/Users", json=rfc_user("rehired"))
    assert again.status_code == 201, again.text
    assert again.json()["id"] == user["id"]
    assert again.json()["active"] is True


def test_if_match_mismatch_is_412(scim: TestClient) -> None:
    user = scim.post("/Users", json=rfc_user("versioned")).json()
    stale = 'W/"stale"'
    change = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title",
                                                  "value": "x"}]}
    assert error_of(scim.patch(f"/Users/{user['id']}", json=change,
                               headers={"If-Match": stale}))[0] == 412
    assert error_of(scim.delete(f"/Users/{user['id']}", headers={"If-Match": stale}))[0] == 412
    ok = scim.patch(f"/Users/{user['id']}", json=change,
                    headers={"If-Match": user["meta"]["version"]})
    assert ok.status_code == 200
    assert ok.headers["ETag"] != user["meta"]["version"]


def test_bad_writes_answer_scim_errors(scim: TestClient) -> None:
    assert error_of(scim.post("/Users", json={"schemas": [schemas.USER]})) == \
        (400, "invalidValue")
    bad_manager = rfc_user("m1") | {ENT: {"manager": {"value": "nobody"}}}
    assert error_of(scim.post("/Users", json=bad_manager)) == (400, "invalidValue")
    user = scim.post("/Users", json=rfc_user("keyed")).json()
    rekey = {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": f"{ENT}:employeeNumber", "value": "other"}]}
    assert error_of(scim.patch(f"/Users/{user['id']}", json=rekey)) == (400, "mutability")
    assert error_of(scim.patch(f"/Users/{user['id']}", json={"Operations": "x"})) == \
        (400, "invalidSyntax")
    assert error_of(scim.get("/Users/not-a-uuid")) == (404, None)


def test_list_filter_sort_page_and_attributes(scim: TestClient,
                                              session_factory: sessionmaker[Session],
                                              clock: FixedClock) -> None:
    for n, (given, dept) in enumerate([("Ann", "Sales"), ("Bob", "Sales"), ("Cy", "Ops"),
                                       ("Dé", "Ops")]):
        add_identity(session_factory, clock, employee_id=f"E{n}", given_name=given,
                     family_name="Ng", user_name=f"{given.lower()}@example.com",
                     email=f"{given.lower()}@example.com", department=dept,
                     job_title="Analyst" if n % 2 else None)

    def names(**params: Any) -> list[str]:
        answer = scim.get("/Users", params=params)
        assert answer.status_code == 200, answer.text
        return [r["name"]["givenName"] for r in answer.json()["Resources"]]

    assert names(filter='userName eq "ANN@example.com"') == ["Ann"]
    assert names(filter=f'{ENT}:employeeNumber eq "e2"') == ["Cy"]
    assert names(filter='emails eq "bob@example.com"') == ["Bob"]
    assert names(filter=f'{ENT}:department eq "sales" and not (title pr)') == ["Ann"]
    # evaluated in Python: a value filter, and a non-ASCII value
    assert names(filter='emails[type eq "work" and value sw "c"]') == ["Cy"]
    assert names(filter='name.givenName eq "dÉ"') == ["Dé"]
    assert names(sortBy="name.givenName", sortOrder="descending") == ["Dé", "Cy", "Bob", "Ann"]
    assert names(sortBy="userName", startIndex=2, count=2) == ["Bob", "Cy"]
    assert names(sortBy="addresses.locality", filter='title pr') in (["Bob", "Dé"],
                                                                     ["Dé", "Bob"])
    page = scim.get("/Users", params={"count": 0}).json()
    assert (page["totalResults"], page["itemsPerPage"], page["Resources"]) == (4, 0, [])
    some = scim.get("/Users", params={"attributes": "userName,name.givenName",
                                      "filter": 'userName sw "a"'}).json()["Resources"][0]
    assert set(some) == {"schemas", "id", "userName", "name"}
    assert some["name"] == {"givenName": "Ann"}
    less = scim.get("/Users", params={"excludedAttributes": f"emails,{ENT}:department",
                                      "filter": 'userName sw "a"'}).json()["Resources"][0]
    assert "emails" not in less and "department" not in less[ENT]
    searched = scim.post("/Users/.search", json={
        "schemas": [schemas.SEARCH_REQUEST], "filter": 'name.familyName eq "ng"',
        "sortBy": "userName", "startIndex": 1, "count": 3, "attributes": ["userName"]})
    assert [r["userName"] for r in searched.json()["Resources"]] == [
        "ann@example.com", "bob@example.com", "cy@example.com"]
    assert error_of(scim.get("/Users", params={"filter": "userName eq"})) == \
        (400, "invalidFilter")
    assert error_of(scim.get("/Users", params={"filter": 'foo eq "x"'})) == \
        (400, "invalidFilter")
