"""A role change previewed, then saved: holders' operations match the preview."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.models import AuditEvent, RoleEntitlement
from idgov.models.provisioning import ProvisioningOperation
from tests.provisioning.world import (  # noqa: F401  (fixtures)
    World,
    auditor_headers_fixture,
    world_fixture,
)

Change = tuple[str, str, str]  # (person, entitlement, "grant" | "revoke")


def _sod_rule(world: World, name: str, a: str, b: str) -> None:
    world.api.ok("POST", "/sod-rules", 201, json={
        "name": name, "severity": "high",
        "side_a": [{"entitlement_id": world.ent[a]}],
        "side_b": [{"entitlement_id": world.ent[b]}]})


def _preview(world: World, role: str, status: int = 200, **body: list[str]) -> Any:
    return world.api.ok("POST", f"/roles/{world.role[role]}/impact", status, json=body)


def _previewed(world: World, impact: dict[str, Any]) -> set[Change]:
    changes: set[Change] = set()
    for change in impact["changes"]:
        person = world.who(change["identity_id"])
        changes |= {(person, g["entitlement"]["name"], "grant") for g in change["gains"]}
        changes |= {(person, g["entitlement"]["name"], "revoke") for g in change["losses"]}
    return changes


def _recorded(world: World) -> set[Change]:
    return {(world.who(o["identity_id"]), world.name_of(o["entitlement_id"]), o["action"])
            for o in world.operations(cause="catalog_change")}


def _counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as session:
        return (session.scalar(select(func.count()).select_from(ProvisioningOperation)) or 0,
                session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_entitlement_changes_previewed_then_saved_give_the_previewed_operations(
        world: World, session_factory: sessionmaker[Session]) -> None:
    world.assign("Alice", role="AP Clerk")       # holds Finance Base through inclusion
    world.assign("Bob", role="Finance Base")
    world.assign("Carol", role="Finance Base")
    world.assign("Carol", entitlement="VPN")     # keeps VPN whatever the role does
    world.assign("Dave", role="Treasury")        # not a holder
    _sod_rule(world, "Post and approve payments", "ERP-Post", "Payments-Approve")
    before = _counts(session_factory)

    impact = _preview(world, "Finance Base", add_entitlements=[world.ent["Payments-Approve"]],
                      end_entitlements=[world.ent["VPN"]])

    assert _counts(session_factory) == before  # a preview saves nothing
    assert impact["role"]["name"] == "Finance Base"
    assert impact["holders"] == 3
    assert _previewed(world, impact) == {
        ("Alice", "Payments-Approve", "grant"), ("Alice", "VPN", "revoke"),
        ("Bob", "Payments-Approve", "grant"), ("Bob", "VPN", "revoke"),
        ("Carol", "Payments-Approve", "grant"),
    }
    assert impact["operations_expected"] == 5
    assert [(world.who(v["identity_id"]), v["rule"]["name"], v["mitigated"])
            for v in impact["new_sod_violations"]] == [
        ("Alice", "Post and approve payments", False)]
    assert "AP Clerk -> Finance Base -> Payments-Approve" in (
        impact["new_sod_violations"][0]["explanation"])

    fb = world.role["Finance Base"]
    world.api.ok("POST", f"/roles/{fb}/entitlements", 201,
                 json={"entitlement_id": world.ent["Payments-Approve"]})
    ended = world.api.ok("DELETE", f"/roles/{fb}/entitlements/{world.ent['VPN']}",
                         params={"reason": "VPN now comes from the device policy"})

    assert _recorded(world) == _previewed(world, impact)
    assert {o["cause_id"] for o in world.operations(cause="catalog_change",
                                                     action="revoke")} == {ended["id"]}
    # The link is end-dated and kept, not deleted.
    with session_factory() as session:
        link = session.get(RoleEntitlement, uuid.UUID(ended["id"]))
        assert link is not None
        assert link.valid_until is not None
        assert link.end_reason == "VPN now comes from the device policy"
        context = session.scalars(
            select(AuditEvent.context).where(AuditEvent.action == "role.end_entitlement")
        ).one()
    assert context == {"reason": "VPN now comes from the device policy",
                       "impact": {"holders": 3, "identities_changed": 2, "gains": 0,
                                  "losses": 2, "operations": 2}}
    shown = world.api.ok("GET", f"/roles/{fb}")
    assert sorted(e["entitlement"]["name"] for e in shown["entitlements"]) == [
        "ERP-Read", "Payments-Approve"]


def test_an_inclusion_previewed_saved_and_ended(world: World) -> None:
    world.assign("Alice", role="AP Clerk")
    world.assign("Bob", role="Treasury")
    world.assign("Carol", role="AP Clerk")
    world.assign("Carol", role="Treasury")  # already has everything Treasury gives
    _sod_rule(world, "Post and approve payments", "ERP-Post", "Payments-Approve")

    impact = _preview(world, "AP Clerk", include_roles=[world.role["Treasury"]])
    assert impact["holders"] == 2
    assert _previewed(world, impact) == {("Alice", "Payments-Approve", "grant")}
    # Carol already breaks the rule, so it is not a new violation for her.
    assert [world.who(v["identity_id"]) for v in impact["new_sod_violations"]] == ["Alice"]

    link = world.api.include(world.role["AP Clerk"], world.role["Treasury"])
    assert _recorded(world) == {("Alice", "Payments-Approve", "grant")}

    leaving = _preview(world, "AP Clerk", end_inclusions=[world.role["Treasury"]])
    assert _previewed(world, leaving) == {("Alice", "Payments-Approve", "revoke")}
    assert leaving["new_sod_violations"] == []
    world.api.ok("DELETE",
                 f"/roles/{world.role['AP Clerk']}/included-roles/{world.role['Treasury']}",
                 params={"reason": "treasury split off"})
    assert _recorded(world) == {("Alice", "Payments-Approve", "grant"),
                                ("Alice", "Payments-Approve", "revoke")}
    assert {o["cause_id"] for o in world.operations(cause="catalog_change")} == {link["id"]}


def test_a_change_without_holders_records_nothing(world: World) -> None:
    impact = _preview(world, "Treasury", add_entitlements=[world.ent["VPN"]])
    assert (impact["holders"], impact["changes"], impact["operations_expected"]) == (0, [], 0)
    world.api.grant(world.role["Treasury"], world.ent["VPN"])
    assert world.operations() == []


def _fields(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem["errors"]]


def test_bad_proposals_are_refused(world: World, client: TestClient,
                                   auditor_headers: dict[str, str]) -> None:
    nobody = str(uuid.uuid4())
    problem = _preview(world, "Finance Base", 422,
                       add_entitlements=[nobody, world.ent["VPN"]],
                       end_entitlements=[world.ent["ERP-Post"]],
                       include_roles=[nobody],
                       end_inclusions=[world.role["Treasury"]])
    assert _fields(problem) == ["add_entitlements.0", "add_entitlements.1",
                                "end_entitlements.0", "include_roles.0", "end_inclusions.0"]

    cycle = _preview(world, "Finance Base", 422, include_roles=[world.role["AP Clerk"]])
    assert cycle["cycle"] == ["Finance Base", "AP Clerk", "Finance Base"]
    assert _fields(cycle) == ["include_roles.0"]

    assert _preview(world, "Finance Base", 422)["status"] == 422  # nothing proposed
    world.api.ok("POST", f"/roles/{nobody}/impact", 404,
                 json={"add_entitlements": [world.ent["VPN"]]})
    url = f"/roles/{world.role['Treasury']}/impact"
    body = {"add_entitlements": [world.ent["VPN"]]}
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=auditor_headers).status_code == 403
