"""The campaign report for auditors: scope, reviewers, every decision with who, when and
comment, and remediation status, as CSV and JSON."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from certification.endpoints_evidence import router
from idgov.audit.signing import Signer
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.main import create_app
from idgov.models.audit import AuditEvent
from tests.certification.loop_world import Loop, loop_fixture
from tests.conftest import PersonHeaders, make_token

__all__ = ["loop_fixture"]


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FixedClock, signer: Signer) -> FastAPI:
    application = create_app(settings, engine=engine, clock=clock, signer=signer)
    path = "/certification/campaigns/{campaign_id}/report"
    if path not in {getattr(r, "path", None) for r in application.routes}:
        application.include_router(router)
    return application


def _campaign(loop: Loop) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
    campaign = loop.campaign(scope={"departments": ["Finance"]}, deadline_action="revoke")
    items = {
        "kept": loop.item(campaign, loop.grant("Alice", "VPN"), decision="certify",
                          comment="needed for remote work"),
        "dropped": loop.item(campaign, loop.grant("Bob", "ERP-Post"), decision="revoke",
                             comment="=HYPERLINK(\"x\")", risk="high", privileged=True),
        "open": loop.item(campaign, loop.grant("Carol", "ERP-Read"), reviewer="Boss"),
    }
    loop.sign_off(campaign)
    return campaign, items


def test_the_report_lists_every_item_with_its_decision_in_csv(
        loop: Loop, client: TestClient, admin_headers: dict[str, str]) -> None:
    campaign, items = _campaign(loop)

    resp = client.get(f"/certification/campaigns/{campaign}/report",
                      params={"format": "csv"}, headers=admin_headers)

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert f"campaign-{campaign}.csv" in resp.headers["content-disposition"]
    rows = {r["item_id"]: r for r in csv.DictReader(io.StringIO(resp.text))}
    assert set(rows) == {str(i) for i in items.values()}
    kept = rows[str(items["kept"])]
    assert (kept["employee_id"], kept["access_type"], kept["access_name"], kept["decision"],
            kept["decided_by"], kept["comment"], kept["remediation"],
            kept["reviewer_name"]) == ("ALICE", "entitlement", "VPN", "certify",
                                       "identity:Mia", "needed for remote work", "none",
                                       "Test MIA")
    assert kept["decided_at"] == "2026-01-15T09:00:00Z"
    assert kept["reviewer_signed_off_at"] == "2026-01-15T09:00:00Z"
    dropped = rows[str(items["dropped"])]
    assert (dropped["decision"], dropped["remediation"], dropped["privileged"],
            dropped["risk"]) == ("revoke", "requested", "true", "high")
    assert dropped["comment"] == "'=HYPERLINK(\"x\")"  # never run as a formula
    still = rows[str(items["open"])]
    assert (still["decision"], still["decided_by"], still["reviewer_signed_off_at"]) == (
        "pending", "", "")


def test_the_json_report_has_scope_reviewers_and_items(
        loop: Loop, client: TestClient, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    campaign, items = _campaign(loop)
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "auditor",
                                                       ["auditor"])}
    with unit_of_work(session_factory) as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))

    resp = client.get(f"/certification/campaigns/{campaign}/report", headers=auditor)

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["campaign"]["scope"] == {"departments": ["Finance"]}
    assert body["campaign"]["deadline_action"] == "revoke"
    assert {(r["name"], r["items"], r["certified"], r["revoked"], r["pending"],
             r["signed_off_at"] is not None) for r in body["reviewers"]} == {
        ("Test MIA", 2, 1, 1, 0, True), ("Test BOSS", 1, 0, 0, 1, False)}
    by_id = {i["item_id"]: i for i in body["items"]}
    assert by_id[str(items["dropped"])]["comment"] == "=HYPERLINK(\"x\")"
    assert by_id[str(items["dropped"])]["remediation"] == "requested"
    assert by_id[str(items["kept"])]["privileged"] is False
    with unit_of_work(session_factory) as session:  # reading is not audited
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_only_readers_get_the_report_and_unknown_campaigns_are_404(
        loop: Loop, client: TestClient, admin_headers: dict[str, str],
        people: PersonHeaders) -> None:
    campaign, _items = _campaign(loop)
    url = f"/certification/campaigns/{campaign}/report"

    assert client.get(url, headers=people[str(loop.ids["Mia"])]).status_code == 403
    assert client.get(url).status_code == 401
    missing = client.get(f"/certification/campaigns/{uuid.uuid4()}/report",
                         headers=admin_headers)
    assert missing.status_code == 404
    assert client.get(url, params={"format": "xml"}, headers=admin_headers).status_code == 422


def test_the_evidence_is_a_report_of_the_registry_with_a_manifest(
        loop: Loop, client: TestClient, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    campaign, items = _campaign(loop)
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "auditor",
                                                       ["auditor"])}
    own = client.get(f"/certification/campaigns/{campaign}/report",
                     params={"format": "csv"}, headers=auditor)

    resp = client.get("/reports/certification_evidence/export",
                      params={"format": "csv", "campaign": str(campaign)}, headers=auditor)

    assert resp.status_code == 200, resp.text
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    expected = list(csv.DictReader(io.StringIO(own.text)))
    assert {r["item_id"]: r["decision"] for r in rows} == {
        str(items["kept"]): "certify", str(items["dropped"]): "revoke",
        str(items["open"]): "pending"}
    assert [r["item_id"] for r in rows] == [r["item_id"] for r in expected]
    manifest = client.get(f"/reports/exports/{resp.headers['x-export-id']}/manifest",
                          headers=auditor)
    assert manifest.status_code == 200
    assert (manifest.json()["report"], manifest.json()["rows"]) == (
        "certification_evidence", 3)
    unknown = client.get("/reports/certification_evidence/export",
                         params={"campaign": str(uuid.uuid4())}, headers=auditor)
    assert unknown.status_code == 404
    missing = client.get("/reports/certification_evidence/export", headers=auditor)
    assert missing.status_code == 422
