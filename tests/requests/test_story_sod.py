"""Story: an SoD conflict is blocked with its explanation, then allowed with a mitigating
control whose owner approves an extra step and whose exception is recorded with its expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from idgov.db.session import unit_of_work
from idgov.models.requests import AccessRequest, RequestLine
from tests.requests.conftest import World, waiting


def _counts(world: World) -> tuple[int, int]:
    with unit_of_work(world.factory) as session:
        return (session.scalar(select(func.count()).select_from(AccessRequest)) or 0,
                session.scalar(select(func.count()).select_from(RequestLine)) or 0)


def test_sod_conflict_blocked_then_allowed_with_a_mitigating_control(world: World) -> None:
    held = world.client.post("/assignments", headers=world.admin, json={
        "identity_id": world.ids["alice"], "entitlement_id": world.ids["payables"],
        "reason": "Accounts payable clerk"})
    assert held.status_code == 201, held.text

    refused = world.ask("alice", "payments", status=409)
    assert "Enter and pay invoices" in refused["detail"]
    [violation] = refused["violations"]
    assert violation["rule"]["name"] == "Enter and pay invoices"
    assert violation["rule"]["exception_allowed"] is True
    assert [[step["name"] for step in g["path"]] for item in violation["side_a"]
            for g in item["grants"]] == [["Payables"]]
    assert [[step["name"] for step in g["path"]] for item in violation["side_b"]
            for g in item["grants"]] == [["Payments"]]
    assert [g["source"] for item in violation["side_a"] for g in item["grants"]] == ["admin"]
    assert "Payables" in violation["explanation"] and "Payments" in violation["explanation"]
    assert _counts(world) == (0, 0)
    assert world.outbox() == []

    expires = world.clock.now() + timedelta(days=90)
    req = world.ask("alice", "payments", line={"mitigation": {
        "control": "Monthly payment review", "owner_id": world.ids["controller"],
        "expires_at": expires.isoformat()}})
    # Numbers are never reused: the refused request left none behind.
    assert req["number"] == "REQ-2026-000001"
    [line] = req["lines"]
    assert line["decision"]["exceptions_needed"] == [world.ids["rule"]]
    assert [s["kind"] for s in line["steps"]] == ["manager", "owner", "control_owner"]
    for who in ("manager", "owner"):
        assert world.decide(who, waiting(world.request(req["id"])["lines"][0])["id"]
                            ).status_code == 200
    control_step = waiting(world.request(req["id"])["lines"][0])
    assert control_step["approvers"] == [world.ids["controller"]]
    resp = world.decide("controller", control_step["id"])
    assert resp.status_code == 200, resp.text
    [line] = resp.json()["lines"]
    assert line["state"] == "provisioning"

    exceptions = world.client.get(f"/sod-rules/{world.ids['rule']}/exceptions",
                                  headers=world.admin).json()["items"]
    [exception] = exceptions
    assert line["sod_exception_ids"] == [exception["id"]]
    assert (exception["identity_id"], exception["control"], exception["approver_id"]) == (
        world.ids["alice"], "Monthly payment review", world.ids["controller"])
    assert exception["expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M:%S"))
    assert sorted(a["entitlement_id"] for a in world.assignments("alice")) == sorted(
        [world.ids["payables"], world.ids["payments"]])


def test_a_pending_line_counts_for_sod(world: World) -> None:
    """Asking for both sides in two requests is caught while the first still waits (the
    privileged-access type approves nothing automatically)."""
    world.ask("alice", "payables", type_key="privileged-access")
    refused = world.ask("alice", "payments", status=409)
    sources = [g["source"] for item in refused["violations"][0]["side_a"]
               for g in item["grants"]]
    assert sources == ["pending"]


def test_a_rule_without_exceptions_cannot_be_mitigated(world: World) -> None:
    resp = world.client.patch(f"/sod-rules/{world.ids['rule']}", headers=world.admin,
                              json={"exception_allowed": False})
    assert resp.status_code == 200, resp.text
    world.ask("alice", "payables")
    refused = world.ask("alice", "payments", status=409, line={"mitigation": {
        "control": "Review", "owner_id": world.ids["controller"],
        "expires_at": (world.clock.now() + timedelta(days=30)).isoformat()}})
    assert "allows no exception" in refused["detail"]


def test_the_explanation_gives_the_path_through_roles(world: World) -> None:
    def post(url: str, body: dict[str, Any]) -> Any:
        resp = world.client.post(url, json=body, headers=world.admin)
        assert resp.status_code == 201, resp.text
        return resp.json()

    clerk = post("/roles", {"name": "AP clerk"})["id"]
    base = post("/roles", {"name": "Finance base", "kind": "technical"})["id"]
    post(f"/roles/{clerk}/included-roles", {"role_id": base})
    post(f"/roles/{base}/entitlements", {"entitlement_id": world.ids["payables"]})
    post("/assignments", {"identity_id": world.ids["alice"], "role_id": clerk,
                          "reason": "Joined accounts payable"})

    refused = world.ask("alice", "payments", status=409)
    [violation] = refused["violations"]
    assert [[step["name"] for step in g["path"]] for item in violation["side_a"]
            for g in item["grants"]] == [["AP clerk", "Finance base", "Payables"]]
    assert "AP clerk -> Finance base -> Payables" in violation["explanation"]
