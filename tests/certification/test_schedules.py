"""The periodic job certification.recurring on both backends, with a controllable clock:
each occurrence of a schedule becomes one launched campaign at the right UTC instant
(DST included), a disabled schedule launches nothing, a second run at the same instant
launches nothing more, an overlap is noted once and retried, and downtime is caught up by
one campaign."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from certification import campaigns, recurring, schedules, tasks
from certification.deadlines import run_deadlines
from certification.models import Campaign, CampaignSchedule
from certification.schemas_schedules import ScheduleCreate, ScheduleUpdate
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from idgov.models.identity import Group
from idgov.provisioning import periodic
from tests.certification.gen_world import ACTOR, World, world

__all__ = ["world"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def org(world: World) -> World:
    for name, manager in (("Boss", None), ("Mia", "Boss"), ("Ann", "Mia"), ("Bob", "Mia")):
        world.person(name, manager)
    world.app("ERP", owner="Boss")
    world.ent("ERP-Read", "ERP", owner="Boss")
    world.assign("Ann", "ERP-Read")
    world.assign("Bob", "ERP-Read")
    return world


def _schedule(org: World, name: str, recurrence: str, **fields: Any) -> CampaignSchedule:
    body = {"name": name, "kind": "manager", "recurrence": recurrence, "duration_days": 14,
            "deadline_action": "keep", **fields}
    with unit_of_work(org.factory) as session:
        return schedules.create_schedule(session, schedule_in=ScheduleCreate.model_validate(
            body), actor=ACTOR, clock=org.clock)


def _run(org: World) -> int:
    with unit_of_work(org.factory) as session:
        return recurring.launch_due(session, actor=ACTOR, clock=org.clock)


def _at(org: World, instant: str) -> int:
    org.clock.set(utc(instant))
    return _run(org)


def _get(org: World, schedule_id: uuid.UUID) -> CampaignSchedule:
    with org.factory() as session:
        found = session.get(CampaignSchedule, schedule_id)
        assert found is not None
        return found


def _made(org: World, schedule_id: uuid.UUID) -> list[tuple[str, str, datetime, datetime]]:
    with org.factory() as session:
        rows = session.execute(select(Campaign.name, Campaign.state, Campaign.starts_at,
                                      Campaign.deadline_at)
                               .where(Campaign.schedule_id == schedule_id)
                               .order_by(Campaign.starts_at))
        return [(r.name, r.state, r.starts_at, r.deadline_at) for r in rows]


def _events(org: World, schedule_id: uuid.UUID, action: str) -> list[AuditEvent]:
    with org.factory() as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == str(schedule_id), AuditEvent.action == action)
            .order_by(AuditEvent.occurred_at)))


def test_a_quarterly_schedule_in_paris_launches_four_campaigns_a_year_at_local_midnight(
        org: World) -> None:
    schedule = _schedule(org, "Quarterly ERP", "quarterly", time_zone="Europe/Paris",
                         duration_days=30)
    assert schedule.next_run_at == utc("2026-03-31T22:00")  # 1 April 00:00 CEST
    launched = 0
    day = org.clock.now().replace(hour=23, minute=30)
    while day < utc("2027-01-15T00:00"):  # the workers, once a day for a year
        org.clock.set(day)
        launched += _run(org)
        run_deadlines(org.factory, None, org.clock, ACTOR)  # type: ignore[arg-type]
        day += timedelta(days=1)

    assert launched == 4
    assert _made(org, schedule.id) == [
        ("Quarterly ERP 2026-04-01", "closed", utc("2026-03-31T22:00"), utc("2026-04-30T22:00")),
        ("Quarterly ERP 2026-07-01", "closed", utc("2026-06-30T22:00"), utc("2026-07-30T22:00")),
        # Back to CET on 25 October: the deadline stays at local midnight.
        ("Quarterly ERP 2026-10-01", "closed", utc("2026-09-30T22:00"), utc("2026-10-30T23:00")),
        ("Quarterly ERP 2027-01-01", "active", utc("2026-12-31T23:00"), utc("2027-01-30T23:00")),
    ]
    found = _get(org, schedule.id)
    assert found.next_run_at == utc("2027-03-31T22:00") and found.last_error is None
    with org.factory() as session:
        last = session.scalars(select(Campaign).where(Campaign.id == found.last_campaign_id)
                               ).one()
    assert (last.trigger, last.trigger_ref, last.counts["items"]) == (
        "recurring", str(schedule.id), 2)
    assert len(_events(org, schedule.id, "campaign_schedule.run")) == 4


def test_a_weekly_cron_schedule_launches_on_monday_morning_and_not_before(
        org: World) -> None:
    schedule = _schedule(org, "Weekly", "0 6 * * 1", time_zone="Europe/Paris",
                         duration_days=3)
    assert schedule.next_run_at == utc("2026-01-19T05:00")  # Thursday 15th -> Monday 19th

    assert _at(org, "2026-01-19T04:59") == 0
    assert _at(org, "2026-01-19T05:00") == 1
    run_deadlines(org.factory, None, org.clock, ACTOR)  # type: ignore[arg-type]
    assert _at(org, "2026-01-22T05:01") == 0
    run_deadlines(org.factory, None, org.clock, ACTOR)  # type: ignore[arg-type]
    assert _at(org, "2026-01-26T05:00") == 1

    assert [(name, start) for name, _, start, _ in _made(org, schedule.id)] == [
        ("Weekly 2026-01-19", utc("2026-01-19T05:00")),
        ("Weekly 2026-01-26", utc("2026-01-26T05:00"))]
    assert _get(org, schedule.id).next_run_at == utc("2026-02-02T05:00")


def test_the_job_run_twice_at_the_same_instant_launches_once(org: World) -> None:
    schedule = _schedule(org, "Monthly", "monthly")
    assert _at(org, "2026-02-01T00:00") == 1
    assert _run(org) == 0
    assert len(_made(org, schedule.id)) == 1
    assert len(_events(org, schedule.id, "campaign_schedule.run")) == 1
    found = _get(org, schedule.id)
    assert (found.last_run_at, found.next_run_at) == (utc("2026-02-01T00:00"),
                                                      utc("2026-03-01T00:00"))


def test_a_disabled_schedule_launches_nothing_and_enabling_it_does_not_catch_up(
        org: World) -> None:
    schedule = _schedule(org, "Off", "monthly", enabled=False)
    assert schedule.next_run_at is None
    assert _at(org, "2026-06-15T12:00") == 0
    assert _made(org, schedule.id) == []

    with unit_of_work(org.factory) as session:
        schedules.update_schedule(session, schedule_id=schedule.id,
                                  schedule_in=ScheduleUpdate(enabled=True), actor=ACTOR,
                                  clock=org.clock)
    assert _get(org, schedule.id).next_run_at == utc("2026-07-01T00:00")
    assert _run(org) == 0
    assert _at(org, "2026-07-01T00:00") == 1


def test_an_overlap_is_noted_once_retried_and_launched_when_the_other_ends(
        org: World) -> None:
    blocking = org.campaign("Running by hand")
    schedule = _schedule(org, "Monthly", "monthly")

    assert _at(org, "2026-02-01T00:00") == 0
    found = _get(org, schedule.id)
    assert found.last_error is not None and str(blocking.id) in found.last_error
    assert found.next_run_at == utc("2026-02-01T00:00") and found.last_run_at is None
    assert _made(org, schedule.id) == []  # the failed campaign was rolled back
    [failed] = _events(org, schedule.id, "campaign_schedule.run_failed")
    assert failed.context == {"error": found.last_error, "occurrence": "2026-02-01T00:00:00+00:00"}

    assert _at(org, "2026-02-01T00:15") == 0  # the same failure: not audited again
    assert len(_events(org, schedule.id, "campaign_schedule.run_failed")) == 1

    with unit_of_work(org.factory) as session:
        campaigns.cancel_campaign(session, campaign_id=blocking.id, reason="done",
                                  actor=ACTOR, clock=org.clock)
    assert _at(org, "2026-02-01T00:30") == 1
    assert _made(org, schedule.id) == [
        ("Monthly 2026-02-01", "active", utc("2026-02-01T00:00"), utc("2026-02-15T00:00"))]
    found = _get(org, schedule.id)
    assert (found.last_error, found.next_run_at) == (None, utc("2026-03-01T00:00"))


def test_downtime_is_caught_up_by_one_campaign_for_the_latest_occurrence(
        org: World) -> None:
    schedule = _schedule(org, "Monthly", "monthly", duration_days=20)
    # Down from 15 January to 3 May: 1 February, March, April and May were missed.
    assert _at(org, "2026-05-03T12:00") == 1
    assert _run(org) == 0
    assert _made(org, schedule.id) == [
        ("Monthly 2026-05-01", "active", utc("2026-05-01T00:00"), utc("2026-05-21T00:00"))]
    assert _get(org, schedule.id).next_run_at == utc("2026-06-01T00:00")


def test_an_occurrence_whose_window_is_over_is_skipped_not_launched(org: World) -> None:
    schedule = _schedule(org, "Monthly", "monthly", duration_days=10)
    # Down until 20 May: the campaign of 1 May would already be past its deadline.
    assert _at(org, "2026-05-20T00:00") == 0
    found = _get(org, schedule.id)
    assert found.next_run_at == utc("2026-06-01T00:00")
    assert found.last_error is not None and "2026-05-01 00:00 was not launched" in (
        found.last_error)
    assert len(_events(org, schedule.id, "campaign_schedule.run_failed")) == 1
    assert _made(org, schedule.id) == []
    assert _at(org, "2026-06-01T00:00") == 1


def test_a_schedule_whose_definition_broke_is_noted_with_the_field(org: World) -> None:
    group = org.group("Reviewers")
    schedule = _schedule(org, "Grouped", "monthly", fallbacks=["group"],
                         fallback_group_id=str(group))
    with unit_of_work(org.factory) as session:  # the group disappears
        session.delete(session.get(Group, group))
    assert _at(org, "2026-02-01T00:00") == 0
    found = _get(org, schedule.id)
    assert found.last_error == ("the campaign definition is not valid; fallback_group_id: "
                                f"no group {group}")
    assert _made(org, schedule.id) == []


def test_run_now_stands_for_a_failing_occurrence(org: World) -> None:
    blocking = org.campaign("Running by hand")
    schedule = _schedule(org, "Monthly", "monthly", enabled=True)
    assert _at(org, "2026-02-01T00:00") == 0  # overlap: noted, retried
    with unit_of_work(org.factory) as session:
        campaigns.cancel_campaign(session, campaign_id=blocking.id, reason=None, actor=ACTOR,
                                  clock=org.clock)
    org.clock.set(utc("2026-02-01T00:05"))
    with unit_of_work(org.factory) as session:
        made = schedules.run_now(session, schedule_id=schedule.id, actor=ACTOR,
                                 clock=org.clock)
        assert (made.starts_at, made.state) == (utc("2026-02-01T00:05"), "active")
    found = _get(org, schedule.id)
    assert (found.last_error, found.next_run_at) == (None, utc("2026-03-01T00:00"))
    assert _run(org) == 0
    [event] = _events(org, schedule.id, "campaign_schedule.run")
    assert event.context is not None and event.context["by_hand"] is True


def test_the_job_is_registered_and_runs_in_its_own_transaction(org: World) -> None:
    tasks.register_jobs()
    every, job = periodic._PLUGIN_JOBS["certification.recurring"]
    assert every == timedelta(minutes=15)
    schedule = _schedule(org, "Monthly", "monthly")
    org.clock.set(utc("2026-02-01T00:00"))
    assert job(org.factory, None, org.clock, ACTOR) == 1  # type: ignore[arg-type]
    with org.factory() as session:
        assert session.scalar(select(func.count()).select_from(Campaign).where(
            Campaign.schedule_id == schedule.id)) == 1
