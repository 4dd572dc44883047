"""Small builders shared by the application and account tests."""

from __future__ import annotations

from fastapi.testclient import TestClient

MISSING = "00000000-0000-0000-0000-000000000001"


def make_identity(client: TestClient, headers: dict[str, str], employee_id: str) -> str:
    resp = client.post("/identities", headers=headers, json={
        "employee_id": employee_id, "given_name": "Alan", "family_name": f"Turing{employee_id}",
        "email": f"{employee_id.lower()}@example.com"})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def make_application(client: TestClient, headers: dict[str, str], name: str,
                     **extra: object) -> str:
    body: dict[str, object] = {"name": name, "connector_kind": "ldap"}
    body.update(extra)
    resp = client.post("/applications", headers=headers, json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])
