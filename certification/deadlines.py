"""Time in a campaign: reminders, escalation of late reviews, the deadline's auto-action.

:func:`run_deadlines` (a periodic job, :mod:`certification.tasks`) looks at every active
campaign, each in its own transaction:

- **reminders**: once the deadline is ``d`` days away for a ``d`` of ``reminder_days``, each
  reviewer with pending items (a group item: each member of the group) who has not signed
  off is told once for that ``d`` (``dedupe_key`` ``certification.reminder:<campaign>:<d>:
  <reviewer>``). Thresholds passed while no worker ran are not caught up: only the nearest
  one is sent.
- **escalation**: ``escalate_after_days`` after the start, each pending item of a reviewer
  who has not signed off moves to that reviewer's manager (who must be active and not the
  item's identity); the reviewer and the manager are told once. An item moves once
  (``context.escalated_from``); ``original_reviewer_id`` keeps the first reviewer. A reviewer
  without a usable manager keeps the item, and the campaign's fallback group members (else
  the administrators) are told.
- **deadline**: at ``deadline_at`` the campaign closes
  (:func:`certification.remediation.close_campaign`, reason ``deadline``): decided items
  take effect and undecided ones meet ``deadline_action``.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from certification.models import Campaign, ReviewerSignoff, ReviewItem
from certification.remediation import close_campaign, escalation_recipients
from idgov.audit.service import EventSpec, record_many
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.identity import GroupMember, Identity
from idgov.notifications.service import notify
from idgov.types import Actor

log = logging.getLogger(__name__)


def _signed_off(session: Session, campaign_id: uuid.UUID) -> set[uuid.UUID]:
    return set(session.scalars(select(ReviewerSignoff.reviewer_id)
                               .where(ReviewerSignoff.campaign_id == campaign_id)))


def _pending_reviewers(session: Session, campaign: Campaign) -> set[uuid.UUID]:
    """Who has pending items to decide: reviewers, and members of reviewer groups."""
    pending = (ReviewItem.campaign_id == campaign.id, ReviewItem.decision == "pending",
               ReviewItem.remediation == "none")
    people: set[uuid.UUID] = {r for r in session.scalars(select(ReviewItem.reviewer_id).where(
        *pending, ReviewItem.reviewer_id.is_not(None)).distinct()) if r is not None}
    groups = select(ReviewItem.reviewer_group_id).where(
        *pending, ReviewItem.reviewer_id.is_(None), ReviewItem.reviewer_group_id.is_not(None))
    people |= set(session.scalars(select(GroupMember.identity_id).where(
        GroupMember.group_id.in_(groups))))
    return people - _signed_off(session, campaign.id)


def send_reminders(session: Session, campaign: Campaign, *, clock: Clock) -> int:
    """Remind reviewers with pending items (once per threshold); how many were told."""
    now = clock.now()
    days = sorted({int(d) for d in campaign.reminder_days or []})
    passed = [d for d in days if now >= campaign.deadline_at - timedelta(days=d)]
    if not passed or now >= campaign.deadline_at:
        return 0
    threshold = min(passed)
    told = 0
    for reviewer in sorted(_pending_reviewers(session, campaign), key=str):
        count = session.scalar(select(func.count()).select_from(ReviewItem).where(
            ReviewItem.campaign_id == campaign.id, ReviewItem.decision == "pending",
            ReviewItem.reviewer_id == reviewer)) or 0
        note = notify(session, recipient_id=reviewer, kind="certification.reminder",
                      subject=f"Reminder: {campaign.name} closes on "
                              f"{campaign.deadline_at.date().isoformat()}",
                      body=(f"You have review items to decide in {campaign.name}"
                            + (f" ({count} assigned to you)" if count else "")
                            + f". The campaign closes at {campaign.deadline_at.isoformat()}; "
                            f"what is left undecided is then handled by its policy "
                            f"({campaign.deadline_action})."),
                      object_type="campaign", object_id=str(campaign.id),
                      dedupe_key=f"certification.reminder:{campaign.id}:{threshold}:{reviewer}",
                      clock=clock)
        told += note is not None
    return told


def _manager_for(session: Session, reviewer_id: uuid.UUID) -> Identity | None:
    reviewer = session.get(Identity, reviewer_id)
    if reviewer is None or reviewer.manager_id is None:
        return None
    manager = session.get(Identity, reviewer.manager_id)
    return manager if manager is not None and manager.lifecycle_state == "active" else None


def escalate_late(session: Session, campaign: Campaign, *, actor: Actor, clock: Clock) -> int:
    """Move late reviewers' pending items to their managers; how many items moved."""
    if campaign.escalate_after_days is None:
        return 0
    now = clock.now()
    if now < campaign.starts_at + timedelta(days=campaign.escalate_after_days):
        return 0
    signed = _signed_off(session, campaign.id)
    late: dict[uuid.UUID, list[ReviewItem]] = defaultdict(list)
    rows = session.scalars(select(ReviewItem).where(
        ReviewItem.campaign_id == campaign.id, ReviewItem.decision == "pending",
        ReviewItem.remediation == "none", ReviewItem.reviewer_id.is_not(None))
        .order_by(ReviewItem.id))
    for item in rows:
        if item.reviewer_id not in signed and "escalated_from" not in (item.context or {}):
            assert item.reviewer_id is not None
            late[item.reviewer_id].append(item)
    events: list[EventSpec] = []
    stuck: list[ReviewItem] = []
    for reviewer_id, items in sorted(late.items(), key=lambda kv: str(kv[0])):
        manager = _manager_for(session, reviewer_id)
        moved = 0
        for item in items:
            target = manager.id if manager is not None else None
            if target == item.identity_id:
                target = None
            item.context = {**(item.context or {}), "escalated_from": str(reviewer_id),
                            "escalated_at": now.isoformat(),
                            "escalated_to": str(target) if target else None}
            if target is None:
                stuck.append(item)
                continue
            item.original_reviewer_id = item.original_reviewer_id or reviewer_id
            item.reviewer_id = target
            moved += 1
            events.append(EventSpec(
                action="review_item.reassign", object_type="review_item", object_id=item.id,
                before={"reviewer_id": str(reviewer_id)}, after={"reviewer_id": str(target)},
                context={"campaign_id": str(campaign.id), "escalation": True,
                         "comment": "late review escalated to the reviewer's manager"}))
        if moved and manager is not None:
            _tell_escalation(session, campaign, reviewer_id, manager, moved, clock=clock)
    session.flush()
    record_many(session, events, actor=actor, clock=clock)
    if stuck:
        for recipient in escalation_recipients(session, campaign):
            notify(session, recipient_id=recipient, kind="certification.late_review",
                   subject=f"{len(stuck)} late review item(s) of {campaign.name} have no "
                           "manager to escalate to",
                   body=(f"Reviewers of {campaign.name} are late and have no active manager "
                         "to take over; reassign their items."),
                   object_type="campaign", object_id=str(campaign.id),
                   dedupe_key=f"certification.late_review:{campaign.id}:{recipient}:"
                              f"{stuck[0].id}", clock=clock)
    return len(events)


def _tell_escalation(session: Session, campaign: Campaign, reviewer_id: uuid.UUID,
                     manager: Identity, moved: int, *, clock: Clock) -> None:
    reviewer = session.get(Identity, reviewer_id)
    name = reviewer.display_name if reviewer is not None else str(reviewer_id)
    notify(session, recipient_id=manager.id, kind="certification.escalation",
           subject=f"{moved} late review item(s) of {campaign.name} are now yours",
           body=(f"{name} did not review in time: {moved} item(s) of {campaign.name} moved "
                 f"to you. The campaign closes at {campaign.deadline_at.isoformat()}."),
           object_type="campaign", object_id=str(campaign.id),
           dedupe_key=f"certification.escalation:{campaign.id}:{reviewer_id}:{manager.id}",
           clock=clock)
    notify(session, recipient_id=reviewer_id, kind="certification.escalation",
           subject=f"Your late review items of {campaign.name} moved to {manager.display_name}",
           body=(f"{moved} item(s) of {campaign.name} were not decided in time and now go to "
                 f"{manager.display_name}."),
           object_type="campaign", object_id=str(campaign.id),
           dedupe_key=f"certification.escalated_from:{campaign.id}:{reviewer_id}",
           clock=clock)


def _due(campaign: Campaign, now: datetime) -> bool:
    return campaign.state == "active" and now >= campaign.starts_at


def run_campaign_deadlines(session: Session, *, campaign_id: uuid.UUID, actor: Actor,
                           clock: Clock) -> int:
    """Reminders, escalation and the deadline of one campaign; what was done, counted
    (reminders sent + items escalated + 1 when it closed)."""
    campaign = session.get(Campaign, campaign_id)
    now = clock.now()
    if campaign is None or not _due(campaign, now):
        return 0
    if now >= campaign.deadline_at:
        close_campaign(session, campaign_id=campaign.id, actor=actor, clock=clock,
                       reason="deadline")
        return 1
    done = escalate_late(session, campaign, actor=actor, clock=clock)
    return done + send_reminders(session, campaign, clock=clock)


def run_deadlines(session_factory: sessionmaker[Session], settings: Settings, clock: Clock,
                  actor: Actor) -> int:
    """The periodic job: :func:`run_campaign_deadlines` for every active campaign, each in
    its own transaction (one that fails is logged and the others still run)."""
    del settings  # nothing configurable yet: the campaigns carry their own timings
    with unit_of_work(session_factory) as session:
        ids = list(session.scalars(select(Campaign.id).where(Campaign.state == "active")
                                   .order_by(Campaign.deadline_at, Campaign.id)))
    done = 0
    for campaign_id in ids:
        try:
            with unit_of_work(session_factory) as session:
                done += run_campaign_deadlines(session, campaign_id=campaign_id, actor=actor,
                                               clock=clock)
        except Exception as error:  # one campaign must not stop the others
            log.error("certification deadlines of campaign %s failed: %s", campaign_id,
                      type(error).__name__)
    return done
