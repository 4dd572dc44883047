"""The /hr/sources API: defining HR feeds, the checks on their mapping and settings, who
may read and write them, and the refusal to delete a source that history names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth import permissions
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import NotFound
from idgov.lifecycle import sources
from idgov.lifecycle.source_endpoints import router
from idgov.models.audit import AuditEvent
from idgov.models.hr import FeedRun
from idgov.models.identity import Identity
from tests.conftest import make_token

MAPPING = {"employee_id": "Employee Number", "given_name": "First Name",
           "family_name": "Last Name", "attributes.division": "Division"}


@pytest.fixture
def hr_client(app: FastAPI, client: TestClient,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The client, with /hr/sources mounted and its capabilities granted (until the
    application does both itself)."""
    if not any(getattr(r, "path", "") == "/hr/sources" for r in app.routes):
        app.include_router(router)
    grants = {"administrator": {"hr:read", "hr_sources:write"}, "auditor": {"hr:read"},
              "hr-system": {"hr:read"}}
    for role, extra in grants.items():
        monkeypatch.setitem(permissions.ROLE_CAPABILITIES, role,
                            permissions.ROLE_CAPABILITIES[role] | extra)
    yield client


def _create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = client.post("/hr/sources", headers=headers, json={"name": "Workday", **body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _actions(factory: sessionmaker[Session], object_id: str) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent.action)
                                    .where(AuditEvent.object_id == object_id)
                                    .order_by(AuditEvent.seq)))


def test_create_read_update_delete_a_source_is_audited(
        hr_client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    created = _create(hr_client, admin_headers, column_mapping=MAPPING,
                      location_time_zones={"Paris": "Europe/Paris", "NYC": "America/New_York"},
                      default_time_zone="Europe/London", change_threshold=500)
    assert created["kind"] == "csv" and created["default_mode"] == "snapshot"
    assert created["termination_threshold_percent"] == 5.0
    assert created["mover_grace_days"] == 7 and created["account_retention_days"] == 30
    assert created["column_mapping"] == MAPPING
    source_id = created["id"]
    read = hr_client.get(f"/hr/sources/{source_id}", headers=admin_headers)
    assert read.status_code == 200 and read.json() == created
    patched = hr_client.patch(f"/hr/sources/{source_id}", headers=admin_headers, json={
        "all_or_nothing": True, "change_threshold": None, "termination_threshold_percent": 2.5,
        "description": "Nightly export"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["all_or_nothing"] is True
    assert patched.json()["change_threshold"] is None
    assert patched.json()["column_mapping"] == MAPPING
    assert hr_client.delete(f"/hr/sources/{source_id}", headers=admin_headers).status_code == 204
    assert hr_client.get(f"/hr/sources/{source_id}", headers=admin_headers).status_code == 404
    assert _actions(session_factory, source_id) == [
        "hr_source.create", "hr_source.update", "hr_source.delete"]


def test_sources_are_listed_in_pages_and_filtered(
        hr_client: TestClient, admin_headers: dict[str, str]) -> None:
    for n, kind in enumerate(("csv", "json", "csv", "scim", "csv")):
        _create(hr_client, admin_headers, name=f"Source {n}", kind=kind)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "kind": "csv"}
        if cursor:
            params["cursor"] = cursor
        page = hr_client.get("/hr/sources", params=params, headers=admin_headers)
        assert page.status_code == 200, page.text
        seen += [item["name"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["Source 0", "Source 2", "Source 4"]


@pytest.mark.parametrize(("body", "fields"), [
    ({"kind": "json", "column_mapping": {"surname": "Last Name"}}, {"column_mapping.surname"}),
    ({"column_mapping": {"employee_id": "Id", "given_name": "Name", "family_name": "Name"}},
     {"column_mapping.family_name"}),
    ({"kind": "json", "column_mapping": {"employee_id": " "}}, {"column_mapping.employee_id"}),
    ({"column_mapping": {"employee_id": "Id"}},
     {"column_mapping.given_name", "column_mapping.family_name"}),
    ({"kind": "json", "column_mapping": {"attributes.bad name!": "x"}},
     {"column_mapping.attributes.bad name!"}),
    ({"default_time_zone": "Mars/Olympus"}, {"default_time_zone"}),
    ({"location_time_zones": {"Paris": "CEST", "": "UTC"}},
     {"location_time_zones.Paris", "location_time_zones."}),
    ({"termination_threshold_percent": 101}, {"termination_threshold_percent"}),
    ({"termination_threshold_percent": -1}, {"termination_threshold_percent"}),
    ({"change_threshold": 0}, {"change_threshold"}),
    ({"mover_grace_days": -1}, {"mover_grace_days"}),
    ({"account_retention_days": -5}, {"account_retention_days"}),
    ({"kind": "ldif"}, {"kind"}),
    ({"default_mode": "full"}, {"default_mode"}),
    ({"colour": "red"}, {"colour"}),
])
def test_invalid_sources_are_refused_with_the_fields_at_fault(
        hr_client: TestClient, admin_headers: dict[str, str], body: dict[str, Any],
        fields: set[str]) -> None:
    resp = hr_client.post("/hr/sources", headers=admin_headers, json={"name": "Bad", **body})
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in resp.json()["errors"]} == fields


def test_an_update_is_checked_against_the_whole_source(
        hr_client: TestClient, admin_headers: dict[str, str]) -> None:
    source = _create(hr_client, admin_headers, kind="json",
                     column_mapping={"employee_id": "employeeNumber"})
    url = f"/hr/sources/{source['id']}"
    to_csv = hr_client.patch(url, headers=admin_headers, json={"kind": "csv"})
    assert to_csv.status_code == 422
    assert {e["field"] for e in to_csv.json()["errors"]} == {
        "column_mapping.given_name", "column_mapping.family_name"}
    nulls = hr_client.patch(url, headers=admin_headers, json={"name": None, "enabled": None,
                                                            "default_time_zone": None})
    assert nulls.status_code == 422
    assert {e["field"] for e in nulls.json()["errors"]} == {"name", "enabled",
                                                          "default_time_zone"}
    zone = hr_client.patch(url, headers=admin_headers,
                           json={"location_time_zones": {"Lyon": "Europe/Lyon"}})
    assert zone.status_code == 422
    assert hr_client.get(url, headers=admin_headers).json() == source


def test_names_are_unique_ignoring_case(hr_client: TestClient,
                                        admin_headers: dict[str, str]) -> None:
    first = _create(hr_client, admin_headers)
    _create(hr_client, admin_headers, name="SAP")
    again = hr_client.post("/hr/sources", headers=admin_headers, json={"name": "WORKDAY"})
    assert again.status_code == 409
    renamed = hr_client.patch(f"/hr/sources/{first['id']}", headers=admin_headers,
                              json={"name": "sap"})
    assert renamed.status_code == 409
    same = hr_client.patch(f"/hr/sources/{first['id']}", headers=admin_headers,
                           json={"name": "WorkDay"})
    assert same.status_code == 200


def test_a_source_with_history_cannot_be_deleted(
        hr_client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    with_run = _create(hr_client, admin_headers, name="With a run")
    with_person = _create(hr_client, admin_headers, name="With a person")
    with unit_of_work(session_factory) as session:
        session.add(FeedRun(source_id=uuid.UUID(with_run["id"]), mode="snapshot",
                            channel="file", started_at=clock.now()))
        session.add(Identity(employee_id="E1", given_name="Ada", family_name="Lovelace",
                             display_name="Ada Lovelace",
                             hr_source_id=uuid.UUID(with_person["id"])))
    for source, what in ((with_run, "1 feed run"), (with_person, "1 identities")):
        resp = hr_client.delete(f"/hr/sources/{source['id']}", headers=admin_headers)
        assert resp.status_code == 409, resp.text
        assert what in resp.json()["detail"]
        assert hr_client.get(f"/hr/sources/{source['id']}",
                             headers=admin_headers).status_code == 200
    missing = hr_client.delete(f"/hr/sources/{uuid.uuid4()}", headers=admin_headers)
    assert missing.status_code == 404


@pytest.mark.parametrize("role", ["auditor", "hr-system"])
def test_auditors_and_hr_systems_read_but_do_not_write(
        hr_client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock, role: str) -> None:
    source = _create(hr_client, admin_headers)
    headers = {"Authorization": "Bearer " + make_token(session_factory, clock, role, [role])}
    assert hr_client.get("/hr/sources", headers=headers).status_code == 200
    assert hr_client.get(f"/hr/sources/{source['id']}", headers=headers).status_code == 200
    assert hr_client.post("/hr/sources", headers=headers,
                          json={"name": "Mine"}).status_code == 403
    assert hr_client.patch(f"/hr/sources/{source['id']}", headers=headers,
                           json={"enabled": False}).status_code == 403
    assert hr_client.delete(f"/hr/sources/{source['id']}",
                            headers=headers).status_code == 403
    assert hr_client.get("/hr/sources").status_code == 401


def test_the_cli_finds_a_source_by_name(
        hr_client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    created = _create(hr_client, admin_headers, name="Workday EU")
    _create(hr_client, admin_headers, name="workday eu (old)")
    with session_factory() as session:
        assert str(sources.get_source_by_name(session, "Workday EU").id) == created["id"]
        assert str(sources.get_source_by_name(session, "WORKDAY eu").id) == created["id"]
        with pytest.raises(NotFound):
            sources.get_source_by_name(session, "SAP")
