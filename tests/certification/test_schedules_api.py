"""/certification/schedules over HTTP, on both backends: create, read, list, change, run now
and the campaigns a schedule made; clear 422s with the field and nothing stored, 409 for a
name taken or an overlapping run, 404 for unknown schedules, 403 for those who may not."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from idgov.clock import FixedClock
from idgov.models.audit import AuditEvent
from tests.certification.gen_world import World, world
from tests.conftest import PersonHeaders, make_token

__all__ = ["world"]
BASE = "/certification/schedules"
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def org(world: World) -> World:
    for name, manager in (("Boss", None), ("Mia", "Boss"), ("Ann", "Mia")):
        world.person(name, manager)
    world.app("ERP", owner="Boss")
    world.ent("ERP-Read", "ERP", owner="Boss")
    world.assign("Ann", "ERP-Read")
    return world


@pytest.fixture
def auditor_headers(world: World, clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(world.factory, clock, "test-auditor",
                                                    ["auditor"])}


def _body(**extra: Any) -> dict[str, Any]:
    return {"name": "Quarterly ERP", "kind": "manager", "recurrence": "quarterly",
            "time_zone": "Europe/Paris", "duration_days": 30, **extra}


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_an_administrator_defines_reads_changes_and_runs_a_schedule(
        org: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post(BASE, json=_body(scope={"application_ids": [str(org.ids["ERP"])]},
                                           reminder_days=[1, 7], deadline_action="keep"),
                          headers=admin_headers)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert {k: schedule[k] for k in ("name", "kind", "scope", "reminder_days", "recurrence",
                                     "time_zone", "duration_days", "enabled", "next_run_at",
                                     "upcoming", "last_run_at", "last_error")} == {
        "name": "Quarterly ERP", "kind": "manager",
        "scope": {"application_ids": [str(org.ids["ERP"])]}, "reminder_days": [7, 1],
        "recurrence": "quarterly", "time_zone": "Europe/Paris", "duration_days": 30,
        "enabled": True, "next_run_at": "2026-03-31T22:00:00Z",
        "upcoming": ["2026-03-31T22:00:00Z", "2026-06-30T22:00:00Z", "2026-09-30T22:00:00Z"],
        "last_run_at": None, "last_error": None}
    url = f"{BASE}/{schedule['id']}"
    assert client.get(url, headers=admin_headers).json() == schedule
    assert [s["id"] for s in client.get(BASE, headers=admin_headers).json()["items"]] == [
        schedule["id"]]
    assert client.get(BASE, params={"enabled": "false"},
                      headers=admin_headers).json()["items"] == []

    changed = client.patch(url, json={"recurrence": "0 6 * * MON", "duration_days": 5,
                                      "description": "weekly now"}, headers=admin_headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["next_run_at"], changed.json()["description"]) == (
        "2026-01-19T05:00:00Z", "weekly now")
    assert changed.json()["scope"] == schedule["scope"]  # untouched fields stay
    off = client.patch(url, json={"enabled": False}, headers=admin_headers).json()
    assert (off["enabled"], off["next_run_at"], off["upcoming"]) == (False, None, [])

    run = client.post(f"{url}/run", headers=admin_headers)  # by hand, even disabled
    assert run.status_code == 201, run.text
    campaign = run.json()
    assert (campaign["name"], campaign["state"], campaign["trigger"], campaign["trigger_ref"],
            campaign["starts_at"], campaign["deadline_at"], campaign["counts"]["items"]) == (
        "Quarterly ERP 2026-01-15", "active", "recurring", schedule["id"],
        "2026-01-15T09:00:00Z", "2026-01-20T09:00:00Z", 1)
    after = client.get(url, headers=admin_headers).json()
    assert (after["last_run_at"], after["last_campaign_id"]) == (
        "2026-01-15T09:00:00Z", campaign["id"])
    made = client.get(f"{url}/campaigns", headers=admin_headers).json()
    assert [c["id"] for c in made["items"]] == [campaign["id"]]

    again = client.post(f"{url}/run", headers=admin_headers)  # the same scope is under review
    assert again.status_code == 409 and campaign["id"] in again.json()["detail"]
    assert len(client.get(f"{url}/campaigns", headers=admin_headers).json()["items"]) == 1

    with org.factory() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_id == schedule["id"]).order_by(AuditEvent.seq)))
    assert actions == ["campaign_schedule.create", "campaign_schedule.update",
                       "campaign_schedule.update", "campaign_schedule.run"]


def test_bad_schedules_are_refused_with_the_field_and_nothing_is_stored(
        org: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    def post(**extra: Any) -> Any:
        return client.post(BASE, json=_body(**extra), headers=admin_headers)

    assert _fields(post(recurrence="fortnightly")) == ["recurrence"]
    assert _fields(post(recurrence="0 6 * *")) == ["recurrence"]
    assert _fields(post(recurrence="61 6 * * *")) == ["recurrence"]
    assert _fields(post(time_zone="Europe/Atlantis")) == ["time_zone"]
    assert _fields(post(duration_days=0)) == ["duration_days"]
    assert _fields(post(duration_days=92)) == ["duration_days"]  # reaches the next quarter
    assert _fields(post(recurrence="monthly", duration_days=28)) == ["duration_days"]
    assert _fields(post(scope={"min_risk": "extreme"})) == ["scope.min_risk"]
    assert _fields(post(scope={"application_ids": [str(org.ids["Ann"])]})) == [
        "scope.application_ids"]
    assert _fields(post(fallbacks=["group"])) == ["fallback_group_id"]
    assert _fields(post(first_run_at="2026-01-01T00:00:00Z")) == ["first_run_at"]
    assert _fields(post(first_run_at="2026-05-01T00:00:00")) == ["first_run_at"]  # no zone
    assert _fields(post(colour="red")) == ["colour"]
    assert _fields(post(recurrence="weekly", time_zone="Nowhere", fallbacks=["group"])) == [
        "fallback_group_id", "recurrence", "time_zone"]
    assert client.get(BASE, headers=admin_headers).json()["items"] == []

    first = post(first_run_at="2026-07-01T00:00:00+02:00")
    assert first.status_code == 201 and first.json()["next_run_at"] == "2026-06-30T22:00:00Z"
    duplicate = post(recurrence="monthly", duration_days=20)
    assert duplicate.status_code == 409 and "Quarterly ERP" in duplicate.json()["detail"]

    url = f"{BASE}/{first.json()['id']}"
    assert _fields(client.patch(url, json={"duration_days": 95}, headers=admin_headers)) == [
        "duration_days"]
    assert _fields(client.patch(url, json={"recurrence": None, "kind": None},
                                headers=admin_headers)) == ["kind", "recurrence"]
    assert client.get(url, headers=admin_headers).json() == first.json()


def test_who_may_read_and_change_schedules(
        org: World, client: TestClient, admin_headers: dict[str, str],
        auditor_headers: dict[str, str], people: PersonHeaders) -> None:
    made = client.post(BASE, json=_body(), headers=admin_headers).json()
    url = f"{BASE}/{made['id']}"
    assert client.get(url, headers=auditor_headers).status_code == 200
    assert client.get(f"{url}/campaigns", headers=auditor_headers).status_code == 200
    assert client.get(BASE, headers=auditor_headers).status_code == 200
    for headers in (auditor_headers, people[str(org.ids["Mia"])]):
        assert client.post(BASE, json=_body(name="x"), headers=headers).status_code == 403
        assert client.patch(url, json={"enabled": False}, headers=headers).status_code == 403
        assert client.post(f"{url}/run", headers=headers).status_code == 403
    assert client.get(url, headers=people[str(org.ids["Mia"])]).status_code == 403
    assert client.get(BASE).status_code == 401


def test_unknown_schedules_answer_404(client: TestClient,
                                      admin_headers: dict[str, str]) -> None:
    url = f"{BASE}/{MISSING}"
    assert client.get(url, headers=admin_headers).status_code == 404
    assert client.patch(url, json={"enabled": False}, headers=admin_headers).status_code == 404
    assert client.post(f"{url}/run", headers=admin_headers).status_code == 404
    assert client.get(f"{url}/campaigns", headers=admin_headers).status_code == 404
