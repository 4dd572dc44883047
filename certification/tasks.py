"""Certification's background work, run by the core's workers through
:func:`idgov.provisioning.periodic.register_job` (the composition roots call
:func:`register_jobs`): deadlines (reminders, escalation, auto-action), verification of
revocations against reconciliation, micro-campaigns for movers' flagged access, scheduled
launches of draft campaigns, recurring campaigns of the schedules."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from certification.deadlines import run_deadlines
from certification.micro import MicroTriggers, open_micro_campaigns
from certification.recurring import launch_due as launch_recurring
from certification.scheduling import launch_due
from certification.verification import verify_remediation
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.provisioning.periodic import register_job
from idgov.types import Actor

DEADLINES_EVERY = timedelta(minutes=15)
VERIFY_EVERY = timedelta(minutes=30)
MICRO_EVERY = timedelta(minutes=15)
SCHEDULED_LAUNCH_EVERY = timedelta(minutes=15)
RECURRING_EVERY = timedelta(minutes=15)


def verify_job(session_factory: sessionmaker[Session], settings: Settings, clock: Clock,
               actor: Actor) -> int:
    """``certification.verify_remediation``: every campaign's revoked items, one
    transaction."""
    del settings
    with unit_of_work(session_factory) as session:
        return verify_remediation(session, clock=clock, actor=actor)


def micro_job(session_factory: sessionmaker[Session], settings: Settings, clock: Clock,
              actor: Actor) -> int:
    """``certification.micro``: micro-campaigns for the events the settings enable (a
    mover's flags; SoD exceptions expiring, unused access, aggregated access), one
    transaction."""
    with unit_of_work(session_factory) as session:
        return open_micro_campaigns(session, actor=actor, clock=clock,
                                    triggers=MicroTriggers.of(settings))


def scheduled_launch_job(session_factory: sessionmaker[Session], settings: Settings,
                         clock: Clock, actor: Actor) -> int:
    """``certification.scheduled_launch``: scheduled drafts whose start has come, one
    transaction (each launch in a savepoint: one that fails stays a draft, noted)."""
    del settings
    with unit_of_work(session_factory) as session:
        return launch_due(session, actor=actor, clock=clock)


def recurring_job(session_factory: sessionmaker[Session], settings: Settings, clock: Clock,
                  actor: Actor) -> int:
    """``certification.recurring``: the campaigns of the schedules whose next occurrence
    has come, one transaction (each launch in a savepoint: one that fails is noted on its
    schedule and retried at the next run)."""
    del settings
    with unit_of_work(session_factory) as session:
        return launch_recurring(session, actor=actor, clock=clock)


def register_jobs() -> None:
    """Register certification's periodic jobs with the core's workers."""
    register_job("certification.deadlines", every=DEADLINES_EVERY, job=run_deadlines)
    register_job("certification.verify_remediation", every=VERIFY_EVERY, job=verify_job)
    register_job("certification.micro", every=MICRO_EVERY, job=micro_job)
    register_job("certification.scheduled_launch", every=SCHEDULED_LAUNCH_EVERY,
                 job=scheduled_launch_job)
    register_job("certification.recurring", every=RECURRING_EVERY, job=recurring_job)
