"""Micro-certification after a move: the mover's flagged access becomes a micro campaign for
the new manager; the decision, once applied, closes the flag (and revokes only once)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from certification.micro import open_micro_campaigns
from certification.models import Campaign, ReviewItem
from idgov.db.session import unit_of_work
from idgov.lifecycle import review_flags
from idgov.models.assignment import Assignment
from idgov.models.hr import ReviewFlag
from tests.certification.loop_world import ACTOR, Loop, loop_fixture

__all__ = ["loop_fixture"]


def _move(loop: Loop, person: str, reviewer: str | None) -> list[ReviewFlag]:
    with unit_of_work(loop.factory) as session:
        made = review_flags.flag_requested_access(
            session, identity_id=loop.ids[person],
            reviewer_id=loop.ids[reviewer] if reviewer else None, change_id=None,
            reason="moved from Finance to Sales", actor=ACTOR, clock=loop.clock)
        session.expunge_all()
        return made


def _open(loop: Loop) -> int:
    with unit_of_work(loop.factory) as session:
        return open_micro_campaigns(session, actor=ACTOR, clock=loop.clock)


def _micro_items(loop: Loop) -> list[ReviewItem]:
    with unit_of_work(loop.factory) as session:
        found = list(session.scalars(select(ReviewItem).join(
            Campaign, Campaign.id == ReviewItem.campaign_id).where(Campaign.kind == "micro")))
        session.expunge_all()
        return found


def test_a_movers_flags_become_a_micro_campaign_for_the_new_manager(loop: Loop) -> None:
    read = loop.grant("Alice", "ERP-Read", source="request")
    post = loop.grant("Alice", "ERP-Post", source="request")
    loop.grant("Alice", "VPN")  # an administrator's grant: not flagged
    flags = _move(loop, "Alice", "Boss")

    assert _open(loop) == 2
    assert _open(loop) == 0  # covered already

    items = _micro_items(loop)
    assert {i.assignment_id for i in items} == {read, post}
    assert {i.reviewer_id for i in items} == {loop.ids["Boss"]}
    assert {i.context["review_flag_id"] for i in items} == {str(f.id) for f in flags}
    assert {i.trigger_key for i in items} == {f"mover:{f.id}" for f in flags}
    campaign = loop.get(Campaign, items[0].campaign_id)
    assert (campaign.kind, campaign.state, campaign.trigger, campaign.deadline_action) == (
        "micro", "active", "mover", "escalate")
    assert campaign.trigger_ref in {str(f.id) for f in flags}  # no HR change: a flag
    assert campaign.deadline_at == loop.clock.now() + timedelta(days=14)
    assert len(loop.notes("Boss", "certification.micro")) == 1
    assert loop.actions(campaign.id) == ["campaign.create"]


def test_the_applied_decision_closes_the_flag_and_revokes_once(loop: Loop) -> None:
    read = loop.grant("Alice", "ERP-Read", source="request")
    post = loop.grant("Alice", "ERP-Post", source="request")
    _move(loop, "Alice", "Boss")
    _open(loop)
    by_assignment = {i.assignment_id: i for i in _micro_items(loop)}
    loop.decide(by_assignment[read].id, "revoke", by="Boss", comment="not needed in Sales")
    loop.decide(by_assignment[post].id, "certify", by="Boss")

    counts = loop.sign_off(by_assignment[read].campaign_id, reviewer="Boss")

    assert counts == {"certified": 1, "requested": 1, "escalated": 0}
    with unit_of_work(loop.factory) as session:
        states = {f.assignment_id: f.state for f in session.scalars(select(ReviewFlag))}
    assert states == {read: "revoked", post: "kept"}
    revoked = loop.get(Assignment, read)
    assert revoked.revoke_reason == "certification: " + loop.get(
        Campaign, by_assignment[read].campaign_id).name
    assert loop.actions(read).count("assignment.revoke") == 1
    assert len(loop.revoke_ops(read)) == 1
    assert loop.get(Assignment, post).last_certified_at == loop.clock.now()
    assert loop.remediation_of(by_assignment[read].id) == "requested"


def test_flags_without_a_reviewer_are_left_to_administrators(loop: Loop) -> None:
    loop.grant("Bob", "ERP-Read", source="request")
    _move(loop, "Bob", None)

    assert _open(loop) == 0
    assert _micro_items(loop) == []


def test_a_flag_reviewed_before_trigger_keys_existed_is_not_reviewed_again(loop: Loop) -> None:
    read = loop.grant("Alice", "ERP-Read", source="request")
    _move(loop, "Alice", "Boss")
    earlier = loop.campaign("Review after a move (older release)", kind="micro",
                            trigger="mover")
    loop.item(earlier, read, reviewer="Boss")  # no trigger_key, made after the flag

    assert _open(loop) == 0
