"""The HTTP API of aggregation and reconciliation: runs, drift, failures, who may call."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.errors import AuthenticationFailed, TargetUnavailable
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from tests.catalog.factories import audit_actions
from tests.conftest import PersonHeaders, make_token
from tests.reconciliation.helpers import Lab


def _seed(lab: Lab) -> None:
    lab.person("E1")
    g1 = lab.entitlement("g1")
    lab.assign("E1", g1)
    lab.target.add_entitlement("g1")
    lab.target.add_entitlement("g2")
    for name in ("orphan-1", "orphan-2", "orphan-3"):
        ref = lab.target.add_account(name, {})
        lab.target.add_member("g2", ref.native_id)
    lab.target.add_account("e1", {"employeeNumber": "E1"})


def _auditor(factory: sessionmaker[Session], clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(factory, clock, "test-auditor",
                                                    ["auditor"])}


def test_reconcile_over_http_stores_the_run_and_serves_its_drift_page_by_page(
        api: TestClient, admin_headers: dict[str, str], lab: Lab) -> None:
    _seed(lab)
    url = f"/applications/{lab.application_id}/reconcile"

    resp = api.post(url, json={"remediate": True}, headers=admin_headers)

    assert resp.status_code == 201, resp.text
    run = resp.json()
    assert (run["kind"], run["state"], run["remediate"], run["application_id"]) == (
        "reconciliation", "succeeded", True, str(lab.application_id))
    assert (run["counts"]["orphan_account"], run["counts"]["missing_grant"],
            run["counts"]["operations_queued"]) == (3, 1, 1)
    assert run["started_by"] == "service_principal:test-admin"

    listed = api.get("/reconciliation/runs", params={"application_id": str(lab.application_id)},
                     headers=admin_headers).json()
    assert [r["id"] for r in listed["items"]] == [run["id"]]
    assert api.get(f"/reconciliation/runs/{run['id']}", headers=admin_headers).json() == run

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/reconciliation/runs/{run['id']}/drift", params=params,
                       headers=admin_headers).json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert sorted((d["kind"], d["detail"].get("username"), d["entitlement_native_id"])
                  for d in seen) == [
        ("missing_grant", None, "g1"),
        ("orphan_account", "orphan-1", None),
        ("orphan_account", "orphan-2", None),
        ("orphan_account", "orphan-3", None),
    ]
    missing = next(d for d in seen if d["kind"] == "missing_grant")
    assert missing["remediation_operation_id"] is not None
    only = api.get(f"/reconciliation/runs/{run['id']}/drift",
                   params={"kind": "missing_grant"}, headers=admin_headers).json()
    assert [d["id"] for d in only["items"]] == [missing["id"]]


def test_aggregate_over_http(api: TestClient, admin_headers: dict[str, str],
                             lab: Lab) -> None:
    _seed(lab)

    resp = api.post(f"/applications/{lab.application_id}/aggregate", headers=admin_headers)

    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["kind"], body["state"], body["counts"]["orphans"],
            body["counts"]["entitlements_created"]) == ("aggregation", "succeeded", 3, 1)


@pytest.mark.parametrize(("fault", "status", "category", "retry_after"), [
    (TargetUnavailable("directory down"), 503, "system_unavailable", None),
    (TargetUnavailable("slow down", retry_after=29.2), 503, "system_unavailable", "30"),
    (AuthenticationFailed("bad bind password"), 502, "authentication", None),
])
def test_a_failing_target_answers_a_problem_and_keeps_the_failed_run(
        api: TestClient, admin_headers: dict[str, str], lab: Lab, fault: Exception,
        status: int, category: str, retry_after: str | None) -> None:
    _seed(lab)
    lab.target.fail_next(fault)  # type: ignore[arg-type]

    resp = api.post(f"/applications/{lab.application_id}/aggregate", headers=admin_headers)

    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers.get("Retry-After") == retry_after
    problem = resp.json()
    assert problem["error_category"] == category
    run = api.get(f"/reconciliation/runs/{problem['run_id']}", headers=admin_headers).json()
    assert (run["state"], run["error"]) == ("failed", f"{category}: {fault}")
    assert lab.accounts() == {}


def test_starting_runs_is_refused_when_it_cannot_work(
        api: TestClient, admin_headers: dict[str, str], lab: Lab) -> None:
    lab.settings(settings={"capabilities": ["grant"]})
    resp = api.post(f"/applications/{lab.application_id}/reconcile", json={},
                    headers=admin_headers)
    assert resp.status_code == 409
    assert resp.json()["missing_capabilities"] == ["list_accounts", "list_entitlements"]

    unknown = "/applications/00000000-0000-4000-8000-000000000000/aggregate"
    assert api.post(unknown, headers=admin_headers).status_code == 404
    assert api.post(f"/applications/{lab.application_id}/reconcile",
                    json={"remediate": True, "dry_run": True},
                    headers=admin_headers).status_code == 422
    assert api.get("/reconciliation/runs/00000000-0000-4000-8000-000000000000",
                   headers=admin_headers).status_code == 404
    assert api.get("/reconciliation/runs/00000000-0000-4000-8000-000000000000/drift",
                   headers=admin_headers).status_code == 404


def test_auditors_read_runs_people_do_not(
        api: TestClient, admin_headers: dict[str, str], lab: Lab,
        session_factory: sessionmaker[Session], clock: FixedClock,
        people: PersonHeaders) -> None:
    _seed(lab)
    run = api.post(f"/applications/{lab.application_id}/aggregate",
                   headers=admin_headers).json()
    auditor = _auditor(session_factory, clock)
    person = people[str(lab.people["E1"])]

    assert api.get("/reconciliation/runs", headers=auditor).status_code == 200
    assert api.get(f"/reconciliation/runs/{run['id']}/drift", headers=auditor).status_code \
        == 200
    assert api.post(f"/applications/{lab.application_id}/aggregate",
                    headers=auditor).status_code == 403
    assert api.post(f"/applications/{lab.application_id}/reconcile", json={},
                    headers=auditor).status_code == 403
    assert api.get("/reconciliation/runs", headers=person).status_code == 403
    assert api.post(f"/applications/{lab.application_id}/reconcile", json={},
                    headers=person).status_code == 403
    assert api.get("/reconciliation/runs").status_code == 401


def test_runs_and_what_they_change_are_audited(
        api: TestClient, admin_headers: dict[str, str], lab: Lab,
        session_factory: sessionmaker[Session]) -> None:
    _seed(lab)

    run = api.post(f"/applications/{lab.application_id}/reconcile", json={"remediate": True},
                   headers=admin_headers).json()

    assert audit_actions(session_factory, run["id"]) == ["reconciliation.reconcile"]
    with unit_of_work(session_factory) as session:
        events = list(session.scalars(select(AuditEvent).where(
            AuditEvent.context["run_id"].as_string() == run["id"])))
        assert sorted(e.action for e in events) == (
            ["account.create"] * 4 + ["provisioning.record"])
        assert {e.actor_name for e in events} == {"test-admin"}
        done = session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == run["id"])).one()
        assert done.before is None
        assert done.after is not None
        assert (done.after["state"], done.after["remediate"],
                done.after["counts"]["orphan_account"]) == ("succeeded", True, 3)
