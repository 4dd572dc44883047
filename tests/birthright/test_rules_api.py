"""/birthright-rules: administration, validation, application to existing identities,
history-preserving delete, preview."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.models import Assignment, AuditEvent
from tests.birthright.conftest import GRACE, Org
from tests.conftest import make_token

SALES = {"attribute": "department", "op": "eq", "value": "Sales"}


@pytest.fixture
def auditor_headers(session_factory: sessionmaker[Session],
                    clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(session_factory, clock, "test-auditor",
                                                    ["auditor"])}


def call(client: TestClient, headers: dict[str, str], method: str, url: str,
         status: int, **kwargs: Any) -> Any:
    resp = client.request(method, url, headers=headers, **kwargs)
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def birthright(factory: sessionmaker[Session], rule_id: str) -> dict[uuid.UUID, Assignment]:
    """The assignments a rule gave, by identity."""
    with factory() as session:
        return {a.identity_id: a for a in session.scalars(
            select(Assignment).where(Assignment.birthright_rule_id == uuid.UUID(rule_id)))}


def actions(factory: sessionmaker[Session], object_id: str) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent.action)
                                    .where(AuditEvent.object_id == object_id)
                                    .order_by(AuditEvent.seq)))


def test_creating_a_rule_grants_it_to_everyone_it_matches_now(
        client: TestClient, admin_headers: dict[str, str], org: Org,
        session_factory: sessionmaker[Session]) -> None:
    made = call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Sales employees", "description": "base access",
        "condition": {"all": [SALES, {"attribute": "employment_type", "op": "eq",
                                      "value": "employee"}]},
        "role_id": str(org.sales_role)})
    assert made["enabled"] is True and made["role_id"] == str(org.sales_role)
    assert made["applied"] == {"identities": 2, "granted": 2, "ending": 0, "restored": 0,
                               "revoked": 0, "skipped": 0}
    given = birthright(session_factory, made["id"])
    # Not the contractor, not the terminated leaver, not engineering.
    assert set(given) == {org.sales1, org.sales2}
    assert {a.source for a in given.values()} == {"birthright"}
    assert actions(session_factory, made["id"]) == ["birthright_rule.create"]
    assert call(client, admin_headers, "GET", f"/birthright-rules/{made['id']}",
                200)["applied"] is None


def test_invalid_conditions_and_targets_answer_422_with_field_paths(
        client: TestClient, admin_headers: dict[str, str], org: Org) -> None:
    def errors(body: dict[str, Any]) -> list[str]:
        resp = client.post("/birthright-rules", headers=admin_headers, json=body)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        return [e["field"] for e in resp.json()["errors"]]

    bad = {"all": [SALES, {"attribute": "shoe_size", "op": "gt", "value": 42}]}
    assert errors({"name": "x", "condition": bad, "role_id": str(org.sales_role)}) == [
        "condition.all[1].attribute", "condition.all[1].op"]
    assert errors({"name": "x", "condition": SALES}) == ["role_id"]
    assert errors({"name": "x", "condition": SALES, "role_id": str(org.sales_role),
                   "entitlement_id": str(org.vpn)}) == ["role_id"]
    assert errors({"name": "x", "condition": SALES, "entitlement_id": str(uuid.uuid4())}) == [
        "entitlement_id"]


def test_names_are_unique(client: TestClient, admin_headers: dict[str, str], org: Org) -> None:
    body = {"name": "VPN for London", "condition": {"attribute": "location", "op": "eq",
                                                    "value": "London"},
            "entitlement_id": str(org.vpn)}
    call(client, admin_headers, "POST", "/birthright-rules", 201, json=body)
    call(client, admin_headers, "POST", "/birthright-rules", 409,
         json=body | {"name": "vpn FOR london"})


def test_list_filters_and_unknown_ids(client: TestClient, admin_headers: dict[str, str],
                                      org: Org) -> None:
    call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Sales", "condition": SALES, "role_id": str(org.sales_role)})
    call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Everyone VPN", "condition": {"all": []}, "entitlement_id": str(org.vpn),
        "enabled": False})
    names = [r["name"] for r in call(client, admin_headers, "GET",
                                     "/birthright-rules?enabled=false", 200)["items"]]
    assert names == ["Everyone VPN"]
    page = call(client, admin_headers, "GET", "/birthright-rules?q=sal", 200)
    assert [r["name"] for r in page["items"]] == ["Sales"] and page["next_cursor"] is None
    call(client, admin_headers, "GET", f"/birthright-rules/{uuid.uuid4()}", 404)
    call(client, admin_headers, "PATCH", f"/birthright-rules/{uuid.uuid4()}", 404,
         json={"enabled": False})


def test_changing_the_condition_grants_new_matches_and_ends_old_ones_after_the_grace(
        client: TestClient, admin_headers: dict[str, str], org: Org, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    rule = call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Base", "condition": SALES, "role_id": str(org.sales_role)})
    changed = call(client, admin_headers, "PATCH", f"/birthright-rules/{rule['id']}", 200,
                   json={"condition": {"attribute": "location", "op": "eq",
                                       "value": "Paris"}})
    # Sales people (London) lose it after the grace period; eng1 (Paris) gains it.
    assert changed["applied"]["granted"] == 1 and changed["applied"]["ending"] == 3
    given = birthright(session_factory, rule["id"])
    assert given[org.eng1].valid_until is None
    assert given[org.sales1].valid_until == clock.now() + GRACE
    # Renaming does not apply anything.
    assert call(client, admin_headers, "PATCH", f"/birthright-rules/{rule['id']}", 200,
                json={"name": "Paris base"})["applied"] is None
    # Disabling ends the rest.
    disabled = call(client, admin_headers, "PATCH", f"/birthright-rules/{rule['id']}", 200,
                    json={"enabled": False})
    assert disabled["applied"]["ending"] == 1
    assert actions(session_factory, rule["id"]) == [
        "birthright_rule.create", "birthright_rule.update", "birthright_rule.update",
        "birthright_rule.update"]
    call(client, admin_headers, "PATCH", f"/birthright-rules/{rule['id']}", 422,
         json={"condition": {"any": "nope"}})
    call(client, admin_headers, "PATCH", f"/birthright-rules/{rule['id']}", 422,
         json={"enabled": None})


def test_switching_the_target(client: TestClient, admin_headers: dict[str, str], org: Org,
                              clock: FixedClock, session_factory: sessionmaker[Session]) -> None:
    rule = call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Paris", "condition": {"attribute": "location", "op": "eq", "value": "Paris"},
        "role_id": str(org.eng_role)})
    switched = call(client, admin_headers, "PATCH", f"/birthright-rules/{rule['id']}", 200,
                    json={"entitlement_id": str(org.vpn)})
    assert (switched["role_id"], switched["entitlement_id"]) == (None, str(org.vpn))
    assert switched["applied"]["granted"] == 1 and switched["applied"]["ending"] == 1
    with session_factory() as session:
        rows = session.execute(select(Assignment.role_id, Assignment.entitlement_id,
                                      Assignment.valid_until)
                               .where(Assignment.identity_id == org.eng1)
                               .order_by(Assignment.created_at, Assignment.role_id)).all()
    assert set(rows) == {(org.eng_role, None, clock.now() + GRACE), (None, org.vpn, None)}


def test_delete_is_refused_once_the_rule_gave_access(
        client: TestClient, admin_headers: dict[str, str], org: Org,
        session_factory: sessionmaker[Session]) -> None:
    used = call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Sales", "condition": SALES, "role_id": str(org.sales_role)})
    unused = call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Nobody", "condition": {"attribute": "department", "op": "eq",
                                        "value": "Nowhere"},
        "entitlement_id": str(org.vpn)})
    resp = client.delete(f"/birthright-rules/{used['id']}", headers=admin_headers)
    assert resp.status_code == 409 and "enabled=false" in resp.json()["detail"]
    # Still refused once disabled: its assignments are history.
    call(client, admin_headers, "PATCH", f"/birthright-rules/{used['id']}", 200,
         json={"enabled": False})
    call(client, admin_headers, "DELETE", f"/birthright-rules/{used['id']}", 409)
    call(client, admin_headers, "DELETE", f"/birthright-rules/{unused['id']}", 204)
    call(client, admin_headers, "GET", f"/birthright-rules/{unused['id']}", 404)
    assert actions(session_factory, unused["id"]) == ["birthright_rule.create",
                                                      "birthright_rule.delete"]


def test_preview_counts_matches_and_shows_who_gains_and_loses(
        client: TestClient, admin_headers: dict[str, str], auditor_headers: dict[str, str],
        org: Org, session_factory: sessionmaker[Session]) -> None:
    found = call(client, auditor_headers, "POST", "/birthright-rules/preview", 200,
                 json={"condition": SALES})
    assert found["matching_count"] == 3
    assert [i["employee_id"] for i in found["matching"]] == ["C001", "E001", "E002"]
    assert found["gaining"] is None and found["losing"] is None
    rule = call(client, admin_headers, "POST", "/birthright-rules", 201, json={
        "name": "Sales", "condition": SALES, "role_id": str(org.sales_role)})
    with session_factory() as session:
        before = session.scalar(select(func.count()).select_from(Assignment))
    diff = call(client, auditor_headers, "POST", "/birthright-rules/preview", 200, json={
        "rule_id": rule["id"], "condition": {"any": [
            {"attribute": "location", "op": "eq", "value": "Paris"},
            {"attribute": "employment_type", "op": "eq", "value": "contractor"}]}})
    assert diff["matching_count"] == 2
    assert [i["employee_id"] for i in diff["gaining"]] == ["E003"]
    assert diff["gaining_count"] == 1 and diff["losing_count"] == 2
    assert [i["employee_id"] for i in diff["losing"]] == ["E001", "E002"]
    # A new target: every match gains it, every holder loses the old one.
    retarget = call(client, auditor_headers, "POST", "/birthright-rules/preview", 200,
                    json={"rule_id": rule["id"], "condition": SALES,
                          "entitlement_id": str(org.vpn)})
    assert retarget["gaining_count"] == 3 and retarget["losing_count"] == 3
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Assignment)) == before
    call(client, auditor_headers, "POST", "/birthright-rules/preview", 422,
         json={"condition": {"attribute": "department", "op": "in", "value": []}})
    call(client, auditor_headers, "POST", "/birthright-rules/preview", 404,
         json={"condition": SALES, "rule_id": str(uuid.uuid4())})


def test_auditors_read_and_administrators_write(
        client: TestClient, admin_headers: dict[str, str], auditor_headers: dict[str, str],
        org: Org) -> None:
    body = {"name": "Sales", "condition": SALES, "role_id": str(org.sales_role)}
    call(client, auditor_headers, "POST", "/birthright-rules", 403, json=body)
    rule = call(client, admin_headers, "POST", "/birthright-rules", 201, json=body)
    call(client, auditor_headers, "GET", "/birthright-rules", 200)
    call(client, auditor_headers, "GET", f"/birthright-rules/{rule['id']}", 200)
    call(client, auditor_headers, "PATCH", f"/birthright-rules/{rule['id']}", 403,
         json={"enabled": False})
    call(client, auditor_headers, "DELETE", f"/birthright-rules/{rule['id']}", 403)
    call(client, {}, "GET", "/birthright-rules", 401)
