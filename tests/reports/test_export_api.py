"""/reports over HTTP on both backends: the catalogue, an export streamed and stored with
its manifest, stored exports, 422/404 before anything runs, auditors read but change
nothing, and a client going away mid-stream over real HTTP leaves a partial export."""
# ruff: noqa: F811  (the fixtures imported from export_fixtures are parameters here)

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.signing import Signer, load_verifier
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.reports import manifest as manifests
from idgov.reports.endpoints import router
from tests.conftest import make_token
from tests.emulators.serve import ServedApp
from tests.reports.export_fixtures import exports, test_reports, world  # noqa: F401 (fixtures)
from tests.reports.export_world import Generated, expected_grants_csv

ROUTES = ("/reports", "/reports/public-key", "/reports/exports",
          "/reports/exports/{id}", "/reports/exports/{id}/manifest",
          "/reports/test-grants/export")


@pytest.fixture
def reports_app(app: FastAPI) -> FastAPI:
    """The app with /reports (mounted here until the composition root mounts it)."""
    if not any(getattr(r, "path", "") == "/reports/public-key" for r in app.routes):
        app.include_router(router)
    return app


@pytest.fixture
def api(reports_app: FastAPI) -> TestClient:
    return TestClient(reports_app, raise_server_exceptions=False)


@pytest.fixture
def auditor(session_factory: sessionmaker[Session], clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(session_factory, clock, "auditor",
                                                    ["auditor"])}


def test_the_catalogue_lists_columns_and_filters(
        api: TestClient, auditor: dict[str, str], test_reports: Generated) -> None:
    answer = api.get("/reports", headers=auditor)
    assert answer.status_code == 200
    found = {r["name"]: r for r in answer.json()["items"]}
    grants = found["test-grants"]
    assert grants["columns"] == ["employee_id", "name", "department", "hire_date",
                                 "application", "entitlement", "privileged", "max_days",
                                 "reason", "granted_at", "revoked_at", "assignment_id"]
    assert sorted(grants["parameters"]["properties"]) == [
        "application", "department", "granted_after", "privileged"]
    assert grants["formats"] == ["csv", "jsonl", "xlsx"]
    assert grants["export_url"] == "/reports/test-grants/export"


def test_an_export_streams_is_stored_and_its_manifest_verifies(
        api: TestClient, auditor: dict[str, str], world: dict[str, uuid.UUID],
        settings: Settings, tmp_path: Path) -> None:
    answer = api.get("/reports/test-grants/export?format=csv", headers=auditor)
    assert answer.status_code == 200, answer.text
    assert answer.content == expected_grants_csv(world)
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    export_id = answer.headers["x-export-id"]
    manifest_url = f"/reports/exports/{export_id}/manifest"
    assert answer.headers["link"] == f'<{manifest_url}>; rel="describedby"; type="application/json"'
    stored = settings.var_dir / "exports"
    name = f"test-grants-20260115T090000Z-{uuid.UUID(export_id).hex}.csv"
    assert sorted(p.name for p in stored.iterdir()) == [name, name + ".manifest.json"]
    assert (stored / name).read_bytes() == answer.content

    manifest = api.get(manifest_url, headers=auditor)
    assert manifest.status_code == 200
    assert manifest.content == (stored / (name + ".manifest.json")).read_bytes()
    key = api.get("/reports/public-key", headers=auditor)
    assert key.status_code == 200 and key.text.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "key.pem").write_text(key.text)
    (tmp_path / "got.csv").write_bytes(answer.content)
    verifier = load_verifier(tmp_path / "key.pem")
    assert key.headers["x-key-id"] in verifier.keys
    check = manifests.verify(tmp_path / "got.csv", json.loads(manifest.content), verifier)
    assert check.ok, check.problems
    assert check.manifest["rows"] == 4

    listed = api.get("/reports/exports", headers=auditor).json()
    assert listed["next_cursor"] is None
    assert [(i["id"], i["state"], i["rows"], i["report"], i["format"], i["file_name"])
            for i in listed["items"]] == [(export_id, "complete", 4, "test-grants", "csv",
                                           name)]
    again = api.get(f"/reports/exports/{export_id}", headers=auditor)
    assert again.status_code == 200 and again.content == answer.content
    assert again.headers["x-export-state"] == "complete"


def test_jsonl_and_xlsx_exports_with_filters(
        api: TestClient, auditor: dict[str, str], world: dict[str, uuid.UUID],
        signer: Signer) -> None:
    answer = api.get("/reports/test-grants/export?format=jsonl&department=Finance"
                     "&department=Sales&privileged=false", headers=auditor)
    assert answer.status_code == 200, answer.text
    assert [json.loads(line)["assignment_id"] for line in answer.text.splitlines()] == [
        str(world["g2"])]
    xlsx = api.get("/reports/test-grants/export?format=xlsx", headers=auditor)
    assert xlsx.status_code == 200
    assert xlsx.content.startswith(b"PK")  # a zip: the workbook
    manifest = api.get(xlsx.headers["link"].split(">")[0][1:], headers=auditor).json()
    assert (manifest["rows"], manifest["format"]) == (4, "xlsx")


@pytest.mark.parametrize(("query", "status", "fields"), [
    ("/reports/test-grants/export?colour=red", 422, ["colour"]),
    ("/reports/test-grants/export?privileged=perhaps", 422, ["privileged"]),
    ("/reports/test-grants/export?granted_after=yesterday&application=a&application=b", 422,
     ["application", "granted_after"]),
    ("/reports/test-grants/export?format=pdf", 422, ["format"]),
    ("/reports/no-such-report/export", 404, []),
])
def test_bad_exports_are_refused_before_anything_runs(
        api: TestClient, auditor: dict[str, str], test_reports: Generated,
        settings: Settings, query: str, status: int, fields: list[str]) -> None:
    answer = api.get(query, headers=auditor)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert sorted(e["field"] for e in answer.json().get("errors") or []) == fields
    assert not (settings.var_dir / "exports").exists()


def test_auditors_read_everything_and_change_nothing(
        api: TestClient, auditor: dict[str, str], session_factory: sessionmaker[Session],
        clock: FixedClock, world: dict[str, uuid.UUID]) -> None:
    export_id = api.get("/reports/test-grants/export", headers=auditor).headers["x-export-id"]
    requester = {"Authorization": "Bearer " + make_token(session_factory, clock, "req",
                                                         ["requester"])}
    for route in ROUTES:
        path = route.replace("{id}", export_id)
        assert api.get(path, headers=auditor).status_code == 200, path
        assert api.get(path, headers=requester).status_code == 403, path
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert api.request(method, path, headers=auditor).status_code == 405, \
                (method, path)
    assert api.get("/reports", headers={}).status_code == 401


def test_a_client_gone_mid_stream_leaves_a_partial_export_without_manifest(
        reports_app: FastAPI, auditor: dict[str, str], settings: Settings,
        test_reports: Generated) -> None:
    with ServedApp(reports_app) as served:
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        connection.request("GET", "/reports/test-generated/export?rows=5000000",
                           headers=auditor)
        response = connection.getresponse()
        assert response.status == 200
        export_id = response.getheader("X-Export-Id")
        assert response.read(1000).startswith(b"n,text,flag,at\r\n")
        connection.sock.close()  # type: ignore[union-attr]  # the client goes away
        connection.close()
        assert test_reports.closed.wait(timeout=60), "the export was not stopped"
        assert test_reports.produced < 5_000_000
        with TestClient(reports_app) as api:
            listed = api.get("/reports/exports", headers=auditor).json()["items"]
            assert [(i["id"], i["state"], i["manifest_url"]) for i in listed] == [
                (export_id, "partial", None)]
            assert api.get(f"/reports/exports/{export_id}/manifest",
                           headers=auditor).status_code == 404
    stored = [p.name for p in (settings.var_dir / "exports").iterdir()]
    assert len(stored) == 1 and stored[0].endswith(".csv.partial")
