"""/request-types: forms served to clients, by id or by key; retired, not deleted, once used."""

from __future__ import annotations

from tests.requests.conftest import World


def test_request_types_by_key_or_id(world: World) -> None:
    listed = world.client.get("/request-types", headers=world.as_("alice"))
    assert listed.status_code == 200
    keys = [t["key"] for t in listed.json()["items"]]
    assert sorted(keys) == ["application-access", "privileged-access",
                            "temporary-elevated-access"]
    by_key = world.client.get("/request-types/application-access", headers=world.as_("alice"))
    assert by_key.status_code == 200
    body = by_key.json()
    assert body["form_schema"]["required"] == ["justification"]
    assert body["approval_stages"] == [
        {"approver": "manager", "group_id": None, "mode": "any"},
        {"approver": "owner", "group_id": None, "mode": "any"}]
    by_id = world.client.get(f"/request-types/{body['id']}", headers=world.as_("alice"))
    assert by_id.json() == body
    assert world.client.get("/request-types/nothing", headers=world.admin).status_code == 404
    # People read types; only administrators write them.
    assert world.client.post("/request-types", headers=world.as_("alice"),
                             json={"key": "x", "name": "X"}).status_code == 403


def test_update_retire_and_delete(world: World) -> None:
    created = world.client.post("/request-types", headers=world.admin, json={
        "key": "badge-access", "name": "Badge access",
        "approval_stages": [{"approver": "group", "group_id": world.ids["officers"],
                             "mode": "all"}]})
    assert created.status_code == 201, created.text
    patched = world.client.patch("/request-types/badge-access", headers=world.admin,
                                 json={"max_duration_days": 30, "description": "Doors"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["max_duration_days"], patched.json()["description"]) == (30, "Doors")
    bad = world.client.patch("/request-types/badge-access", headers=world.admin,
                             json={"form_schema": {"type": "object", "required": "x"}})
    assert bad.status_code == 422
    nulled = world.client.patch("/request-types/badge-access", headers=world.admin,
                                json={"name": None})
    assert nulled.status_code == 422
    group_without_id = world.client.post("/request-types", headers=world.admin, json={
        "key": "g", "name": "G", "approval_stages": [{"approver": "group"}]})
    assert group_without_id.status_code == 422

    assert world.client.delete("/request-types/badge-access",
                               headers=world.admin).status_code == 204
    assert world.client.get("/request-types/badge-access",
                            headers=world.admin).status_code == 404

    world.ask("alice", "wiki")
    used = world.client.delete("/request-types/application-access", headers=world.admin)
    assert used.status_code == 409
    assert used.json()["requests"] == 1
    retired = world.client.patch("/request-types/application-access", headers=world.admin,
                                 json={"active": False})
    assert retired.json()["active"] is False
    problem = world.ask("bob", "wiki", status=422)
    assert [e["field"] for e in problem["errors"]] == ["request_type"]
