"""Scheduled launches on both backends: a draft with launch="scheduled" is launched by
launch_due once its start has come (not before), manual drafts never are, and a launch that
fails (overlap) leaves its campaign a draft with the error noted without stopping others."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from certification import campaigns, scheduling, tasks
from certification.models import Campaign
from certification.schemas_campaigns import CampaignCreate
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from idgov.provisioning import periodic
from tests.certification.gen_world import ACTOR, World, world

__all__ = ["world"]
BASE = "/certification/campaigns"


@pytest.fixture
def org(world: World) -> World:
    for name, manager in (("Boss", None), ("Mia", "Boss"), ("Ann", "Mia"), ("Bob", "Mia")):
        world.person(name, manager)
    world.app("ERP", owner="Boss")
    world.app("CRM", owner="Boss")
    world.ent("ERP-Read", "ERP", owner="Boss")
    world.ent("CRM-User", "CRM", owner="Boss")
    world.assign("Ann", "ERP-Read")
    world.assign("Bob", "ERP-Read")
    world.assign("Ann", "CRM-User")
    return world


def _scheduled(org: World, name: str, *, in_: timedelta, **fields: object) -> Campaign:
    """A draft with launch="scheduled" (World.campaign's own ``launch`` means "launch now")."""
    now = org.clock.now()
    body = {"name": name, "kind": "manager", "launch": "scheduled",
            "starts_at": (now + in_).isoformat(),
            "deadline_at": (now + in_ + timedelta(days=14)).isoformat(), **fields}
    with unit_of_work(org.factory) as session:
        return campaigns.create_campaign(session, campaign_in=CampaignCreate.model_validate(
            body), actor=ACTOR, clock=org.clock)


def _run(org: World) -> int:
    with unit_of_work(org.factory) as session:
        return scheduling.launch_due(session, actor=ACTOR, clock=org.clock)


def _get(org: World, campaign_id: object) -> Campaign:
    with org.factory() as session:
        found = session.get(Campaign, campaign_id)
        assert found is not None
        return found


def test_a_scheduled_draft_is_launched_at_its_start_and_not_before(org: World) -> None:
    campaign = _scheduled(org, "Q2 review", in_=timedelta(days=2))
    assert (campaign.state, campaign.trigger) == ("draft", "schedule")

    org.clock.advance(timedelta(days=2) - timedelta(minutes=1))
    assert _run(org) == 0
    assert _get(org, campaign.id).state == "draft" and org.items(campaign.id) == []

    org.clock.advance(timedelta(minutes=1))  # exactly starts_at
    assert _run(org) == 1
    launched = _get(org, campaign.id)
    assert launched.state == "active" and launched.generated_at == org.clock.now()
    assert launched.counts["items"] == 3 and len(org.items(campaign.id)) == 3
    assert "launch_error" not in launched.counts
    with org.factory() as session:
        actions = list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_id == str(campaign.id)).order_by(AuditEvent.occurred_at)))
    assert actions == ["campaign.create", "campaign.launch"]

    org.clock.advance(timedelta(minutes=15))
    assert _run(org) == 0  # launched once


def test_a_manual_draft_whose_start_has_passed_is_not_launched(org: World) -> None:
    manual = org.campaign("By hand", launch=False,
                          starts_at=(org.clock.now() + timedelta(hours=1)).isoformat())
    assert manual.trigger == "manual"
    org.clock.advance(timedelta(days=1))
    assert _run(org) == 0
    assert _get(org, manual.id).state == "draft" and org.items(manual.id) == []


def test_an_overlapping_scheduled_launch_stays_draft_noted_and_the_others_launch(
        org: World) -> None:
    active = org.campaign("Running", scope={"application_ids": [str(org.ids["ERP"])]})
    overlapping = _scheduled(org, "Overlap", in_=timedelta(hours=1),
                             scope={"application_ids": [str(org.ids["ERP"])]})
    other = _scheduled(org, "CRM only", in_=timedelta(hours=2),
                       scope={"application_ids": [str(org.ids["CRM"])]})
    org.clock.advance(timedelta(hours=3))

    assert _run(org) == 1
    failed = _get(org, overlapping.id)
    assert failed.state == "draft" and org.items(overlapping.id) == []
    assert str(active.id) in failed.counts["launch_error"]
    assert _get(org, other.id).state == "active" and len(org.items(other.id)) == 1

    with org.factory() as session:
        events = list(session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == str(overlapping.id),
            AuditEvent.action == "campaign.launch_failed")))
    assert len(events) == 1 and events[0].context == {"error": failed.counts["launch_error"]}

    org.clock.advance(timedelta(minutes=15))
    assert _run(org) == 0  # still overlapping: retried, not audited again
    with org.factory() as session:
        assert len(list(session.scalars(select(AuditEvent.id).where(
            AuditEvent.object_id == str(overlapping.id),
            AuditEvent.action == "campaign.launch_failed")))) == 1

    with unit_of_work(org.factory) as session:  # the running one ends: the retry launches
        session.get(Campaign, active.id).state = "closed"  # type: ignore[union-attr]
    org.clock.advance(timedelta(minutes=15))
    assert _run(org) == 1
    relaunched = _get(org, overlapping.id)
    assert relaunched.state == "active" and "launch_error" not in relaunched.counts


def test_a_scheduled_draft_past_its_deadline_is_not_launched(org: World) -> None:
    late = _scheduled(org, "Late", in_=timedelta(hours=1))
    org.clock.advance(timedelta(days=30))
    assert _run(org) == 0
    found = _get(org, late.id)
    assert found.state == "draft" and "deadline passed" in found.counts["launch_error"]


def test_the_job_is_registered_and_runs_in_its_own_transaction(org: World) -> None:
    tasks.register_jobs()
    every, job = periodic._PLUGIN_JOBS["certification.scheduled_launch"]
    assert every == timedelta(minutes=15)
    campaign = _scheduled(org, "Q2", in_=timedelta(minutes=5))
    org.clock.advance(timedelta(minutes=5))
    assert job(org.factory, None, org.clock, ACTOR) == 1  # type: ignore[arg-type]
    assert _get(org, campaign.id).state == "active"


def test_the_api_creates_a_scheduled_draft_only_with_a_future_start(
        org: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    now = org.clock.now()
    body = {"name": "Q2", "kind": "manager", "launch": "scheduled",
            "deadline_at": (now + timedelta(days=20)).isoformat()}
    created = client.post(BASE, json={**body, "starts_at": (now + timedelta(days=1))
                                      .isoformat()}, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert (created.json()["state"], created.json()["trigger"]) == ("draft", "schedule")

    for starts_at in (None, now.isoformat(), (now - timedelta(days=1)).isoformat()):
        refused = client.post(BASE, json={**body, "starts_at": starts_at},
                              headers=admin_headers)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["starts_at"]

    manual = client.post(BASE, json={**body, "launch": "manual"}, headers=admin_headers)
    assert manual.status_code == 201 and manual.json()["trigger"] == "manual"
