"""Scheduled launches: a draft campaign created with ``launch="scheduled"`` (trigger
``schedule``) is launched by the periodic job ``certification.scheduled_launch`` once its
``starts_at`` has come, through :func:`certification.campaigns.launch` (the usual
generation, overlap check and ``campaign.launch`` audit event).

A launch that fails with a domain error (an overlap with an active campaign, a definition
that no longer validates) is rolled back alone (a savepoint): the campaign stays a draft and
is tried again at the next run, the others still launch. The failure is noted in
``counts["launch_error"]`` and audited ``campaign.launch_failed`` when it differs from the
one already noted (no new event every run for the same failure). A scheduled draft whose
deadline has already passed is not launched (its undecided items would be auto-actioned at
once): it is noted the same way and left to an administrator (cancel, or redefine).
Manual drafts (trigger ``manual``) are never launched here, whatever their ``starts_at``.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import campaigns
from certification.models import Campaign
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.errors import DomainError
from idgov.types import Actor

log = logging.getLogger(__name__)

SCHEDULE_TRIGGER = "schedule"


def _due(session: Session, clock: Clock) -> list[uuid.UUID]:
    return list(session.scalars(
        select(Campaign.id).where(Campaign.state == "draft",
                                  Campaign.trigger == SCHEDULE_TRIGGER,
                                  Campaign.starts_at <= clock.now())
        .order_by(Campaign.starts_at, Campaign.id)))


def _note_failure(session: Session, campaign_id: uuid.UUID, message: str, *, actor: Actor,
                  clock: Clock) -> None:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.state != "draft":
        return
    counts = dict(campaign.counts or {})
    if counts.get("launch_error") == message:
        return
    before = snapshot(campaign)
    counts["launch_error"] = message
    campaign.counts = counts
    campaign.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="campaign.launch_failed", object_type="campaign",
           object_id=campaign.id, clock=clock, before=before, after=snapshot(campaign),
           context={"error": message})


def launch_due(session: Session, *, actor: Actor, clock: Clock) -> int:
    """Launch every scheduled draft whose start has come, oldest start first; how many were
    launched. Failures are noted on the campaign (see the module), never raised."""
    launched = 0
    for campaign_id in _due(session, clock):
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        if campaign.deadline_at <= clock.now():
            _note_failure(session, campaign_id, "the deadline passed before the scheduled "
                          "launch: cancel the campaign or define a new one",
                          actor=actor, clock=clock)
            continue
        try:
            with session.begin_nested():
                campaigns.launch(session, campaign_id=campaign_id, actor=actor, clock=clock)
            launched += 1
        except DomainError as error:
            log.warning("scheduled launch of campaign %s failed: %s", campaign_id,
                        error.detail)
            _note_failure(session, campaign_id, error.detail, actor=actor, clock=clock)
    return launched
