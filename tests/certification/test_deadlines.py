"""Time in a campaign, with the clock moved forward: reminders once per threshold,
escalation of late reviews to the reviewer's manager, the deadline's auto-action."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certification.deadlines import run_deadlines
from certification.models import Campaign, ReviewItem
from certification.tasks import register_jobs
from idgov.config import Settings
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement
from idgov.provisioning import periodic
from tests.certification.loop_world import ACTOR, Loop, loop_fixture

__all__ = ["loop_fixture"]


def _run(loop: Loop, settings: Settings) -> int:
    return run_deadlines(loop.factory, settings, loop.clock, ACTOR)


def test_reviewers_with_pending_items_are_reminded_once_per_threshold(
        loop: Loop, settings: Settings) -> None:
    start = loop.clock.now()
    campaign = loop.campaign(deadline_at=start + timedelta(days=30), reminder_days=[7, 2])
    loop.item(campaign, loop.grant("Alice", "VPN"))
    loop.item(campaign, loop.grant("Bob", "VPN"), reviewer="Boss", decision="certify")
    group = loop.group("Helpdesk", "Carol")
    loop.item(campaign, loop.grant("Bob", "ERP-Read"), reviewer=None,
              reviewer_group_id=group)

    assert _run(loop, settings) == 0  # nothing due yet
    loop.clock.set(start + timedelta(days=23))
    assert _run(loop, settings) == 2
    assert _run(loop, settings) == 0
    loop.clock.advance(timedelta(days=1))
    assert _run(loop, settings) == 0

    [note] = loop.notes("Mia", "certification.reminder")
    assert "Q1 access review" in note.subject and "(1 assigned to you)" in note.body
    assert len(loop.notes("Carol", "certification.reminder")) == 1  # a group's member
    assert loop.notes("Boss", "certification.reminder") == []  # decided everything
    loop.clock.set(start + timedelta(days=28))
    assert _run(loop, settings) == 2
    assert len(loop.notes("Mia", "certification.reminder")) == 2


def test_late_reviews_escalate_to_the_reviewers_manager_once(
        loop: Loop, settings: Settings) -> None:
    start = loop.clock.now()
    campaign = loop.campaign(escalate_after_days=10)
    late = loop.item(campaign, loop.grant("Alice", "VPN"))
    done = loop.item(campaign, loop.grant("Bob", "VPN"), decision="certify")

    loop.clock.set(start + timedelta(days=9))
    assert _run(loop, settings) == 0
    loop.clock.set(start + timedelta(days=10))
    assert _run(loop, settings) == 1
    assert _run(loop, settings) == 0

    moved = loop.get(ReviewItem, late)
    assert (moved.reviewer_id, moved.original_reviewer_id) == (loop.ids["Boss"],
                                                               loop.ids["Mia"])
    assert moved.context["escalated_from"] == str(loop.ids["Mia"])
    assert loop.get(ReviewItem, done).reviewer_id == loop.ids["Mia"]
    assert len(loop.notes("Boss", "certification.escalation")) == 1
    assert len(loop.notes("Mia", "certification.escalation")) == 1
    assert loop.actions(late) == ["review_item.reassign"]


def test_at_the_deadline_undecided_items_are_revoked_except_the_last_administrator(
        loop: Loop, settings: Settings) -> None:
    loop.update(Entitlement, loop.ent("ERP-Post"), privileged=True)
    start = loop.clock.now()
    campaign = loop.campaign(deadline_at=start + timedelta(days=14), deadline_action="revoke",
                             reminder_days=[3])
    admin = loop.grant("Alice", "ERP-Post")
    plain = loop.grant("Bob", "ERP-Read")
    spared = loop.item(campaign, admin)
    revoked = loop.item(campaign, plain)

    loop.clock.set(start + timedelta(days=14) - timedelta(seconds=1))
    _run(loop, settings)
    assert loop.get(Campaign, campaign).state == "active"
    loop.clock.set(start + timedelta(days=14))
    assert _run(loop, settings) == 1

    assert loop.get(Campaign, campaign).state == "closed"
    assert loop.remediation_of(spared) == "escalated"
    assert loop.get(Assignment, admin).revoked_at is None
    assert loop.remediation_of(revoked) == "requested"
    assert loop.get(Assignment, plain).revoke_reason == "certification: Q1 access review"
    assert _run(loop, settings) == 0  # closed campaigns are left alone


def test_the_workers_run_certifications_jobs_once_registered(
        loop: Loop, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(periodic, "_PLUGIN_JOBS", {})
    register_jobs()
    campaign = loop.campaign(deadline_at=loop.clock.now() + timedelta(days=1),
                             deadline_action="keep")
    loop.item(campaign, loop.grant("Alice", "VPN"))
    loop.clock.advance(timedelta(days=1))

    counts = periodic.run_due_jobs(loop.factory, settings=settings, clock=loop.clock,
                                   actor=ACTOR)

    assert counts["errors"] == 0
    assert counts["certification.deadlines"] == 1
    assert {"certification.verify_remediation", "certification.micro"} <= set(counts)
    assert loop.get(Campaign, campaign).state == "closed"
