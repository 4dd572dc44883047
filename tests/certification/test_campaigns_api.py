"""/certification/campaigns over HTTP: create (draft), list, get, launch, cancel; clear 422s,
404 for campaigns a person reviews nothing in, 409 for overlap and wrong states."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.certification.gen_world import World, world
from tests.conftest import PersonHeaders

__all__ = ["world"]
BASE = "/certification/campaigns"


@pytest.fixture
def org(world: World) -> World:
    for name, manager in (("Boss", None), ("Mia", "Boss"), ("Ann", "Mia"), ("Bob", None)):
        world.person(name, manager)
    world.app("ERP", owner="Boss")
    world.ent("ERP-Read", "ERP", owner="Boss")
    world.assign("Ann", "ERP-Read")
    world.assign("Bob", "ERP-Read")
    return world


def _body(org: World, **extra: Any) -> dict[str, Any]:
    return {"name": "Q1 access review", "kind": "manager",
            "deadline_at": (org.clock.now() + timedelta(days=14)).isoformat(), **extra}


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_an_administrator_creates_launches_reads_and_cancels_a_campaign(
        org: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post(BASE, json=_body(org, scope={"departments": ["Finance"]},
                                           fallbacks=["manager_of_manager"],
                                           reminder_days=[1, 7], deadline_action="keep"),
                          headers=admin_headers)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["state"], campaign["scope"], campaign["reminder_days"]) == (
        "draft", {"departments": ["Finance"]}, [7, 1])
    assert campaign["starts_at"].startswith("2026-01-15T09:00:00")  # now, by default

    launched = client.post(f"{BASE}/{campaign['id']}/launch", headers=admin_headers)
    assert launched.status_code == 200, launched.text
    assert launched.json()["state"] == "active"
    assert launched.json()["counts"]["items"] == 2
    assert launched.json()["counts"]["unresolved"] == 1  # Bob: no manager, no manager's

    page = client.get(BASE, params={"state": "active"}, headers=admin_headers).json()
    assert [c["id"] for c in page["items"]] == [campaign["id"]]
    assert client.get(f"{BASE}/{campaign['id']}", headers=admin_headers).status_code == 200

    again = client.post(f"{BASE}/{campaign['id']}/launch", headers=admin_headers)
    assert again.status_code == 409
    cancelled = client.post(f"{BASE}/{campaign['id']}/cancel", json={"reason": "redo"},
                            headers=admin_headers)
    assert cancelled.json()["state"] == "cancelled"
    assert client.post(f"{BASE}/{campaign['id']}/cancel",
                       headers=admin_headers).status_code == 409


def test_bad_definitions_are_refused_with_the_field(
        org: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    def post(**extra: Any) -> Any:
        return client.post(BASE, json=_body(org, **extra), headers=admin_headers)

    assert _fields(post(kind="composition", scope={"departments": ["Finance"]})) == [
        "scope.departments"]
    assert _fields(post(scope={"application_ids": [str(org.ids["Ann"])]})) == [
        "scope.application_ids"]
    assert _fields(post(scope={"min_risk": "extreme"})) == ["scope.min_risk"]
    assert _fields(post(scope={"colour": "red"})) == ["scope.colour"]
    assert _fields(post(fallbacks=["group"])) == ["fallback_group_id"]
    assert _fields(post(starts_at=(org.clock.now() + timedelta(days=30)).isoformat())) == [
        "deadline_at"]
    assert client.get(BASE, headers=admin_headers).json()["items"] == []


def test_an_overlapping_launch_answers_409_naming_the_other_and_creates_nothing(
        org: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    first = client.post(BASE, json=_body(org, name="first"), headers=admin_headers).json()
    client.post(f"{BASE}/{first['id']}/launch", headers=admin_headers)
    second = client.post(BASE, json=_body(org, name="second", scope={
        "identity_ids": [str(org.ids["Ann"])]}), headers=admin_headers).json()

    refused = client.post(f"{BASE}/{second['id']}/launch", headers=admin_headers)

    assert refused.status_code == 409
    assert "first" in refused.json()["detail"]
    after = client.get(f"{BASE}/{second['id']}", headers=admin_headers).json()
    assert (after["state"], after["counts"], after["generated_at"]) == ("draft", {}, None)


def test_a_person_sees_only_the_campaigns_they_review_items_in(
        org: World, client: TestClient, admin_headers: dict[str, str],
        people: PersonHeaders) -> None:
    made = client.post(BASE, json=_body(org), headers=admin_headers).json()
    client.post(f"{BASE}/{made['id']}/launch", headers=admin_headers)
    mia, ann = people[str(org.ids["Mia"])], people[str(org.ids["Ann"])]

    assert [c["id"] for c in client.get(BASE, headers=mia).json()["items"]] == [made["id"]]
    assert client.get(f"{BASE}/{made['id']}", headers=mia).status_code == 200
    assert client.get(BASE, headers=ann).json()["items"] == []
    assert client.get(f"{BASE}/{made['id']}", headers=ann).status_code == 404
    assert client.post(BASE, json=_body(org), headers=mia).status_code == 403
    assert client.post(f"{BASE}/{made['id']}/launch", headers=mia).status_code == 403
    assert client.post(f"{BASE}/{made['id']}/cancel", headers=mia).status_code == 403


def test_unknown_campaigns_answer_404(client: TestClient,
                                      admin_headers: dict[str, str]) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"{BASE}/{missing}", headers=admin_headers).status_code == 404
    assert client.post(f"{BASE}/{missing}/launch", headers=admin_headers).status_code == 404
    assert client.post(f"{BASE}/{missing}/cancel", headers=admin_headers).status_code == 404
