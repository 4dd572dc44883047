"""The /identities API: create, read, update, delete, list, and the refusals."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _person(employee_id: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"employee_id": employee_id, "given_name": "Ada",
                               "family_name": f"Lovelace{employee_id}",
                               "email": f"{employee_id.lower()}@example.com"}
    body.update(extra)
    return body


def test_create_read_update_delete_identity(client: TestClient,
                                            admin_headers: dict[str, str]) -> None:
    created = client.post("/identities", json=_person("E1", department="Finance"),
                          headers=admin_headers)
    assert created.status_code == 201, created.text
    ident = created.json()
    assert ident["display_name"] == "Ada LovelaceE1"
    assert ident["lifecycle_state"] == "active"
    got = client.get(f"/identities/{ident['id']}", headers=admin_headers)
    assert got.json()["department"] == "Finance"
    patched = client.patch(f"/identities/{ident['id']}", json={"department": "Audit"},
                           headers=admin_headers)
    assert patched.status_code == 200
    assert patched.json()["department"] == "Audit"
    assert client.delete(f"/identities/{ident['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/identities/{ident['id']}", headers=admin_headers).status_code == 404


def test_unknown_field_is_refused_as_problem_json(client: TestClient,
                                                  admin_headers: dict[str, str]) -> None:
    resp = client.post("/identities", json=_person("E2", shoe_size=44), headers=admin_headers)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == 422
    assert {"field": "shoe_size", "message": "Extra inputs are not permitted"} in body["errors"]


def test_dangling_manager_is_422(client: TestClient, admin_headers: dict[str, str]) -> None:
    resp = client.post("/identities",
                       json=_person("E3", manager_id="00000000-0000-0000-0000-000000000001"),
                       headers=admin_headers)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "manager_id"


def test_list_pages_with_a_cursor(client: TestClient, admin_headers: dict[str, str]) -> None:
    for n in range(5):
        assert client.post("/identities", json=_person(f"P{n}"),
                           headers=admin_headers).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/identities", params=params, headers=admin_headers).json()
        seen += [i["employee_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["P0", "P1", "P2", "P3", "P4"]


def test_no_token_is_401(client: TestClient) -> None:
    resp = client.get("/identities")
    assert resp.status_code == 401
    assert resp.json()["title"] == "Authentication required"
