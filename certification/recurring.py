"""Recurring launches: the periodic job ``certification.recurring`` launches the campaign of
every enabled schedule whose ``next_run_at`` has come (:mod:`certification.schedules`).

- **One campaign per due schedule and run.** When several occurrences were missed (the
  service was down, or launches kept failing), they are not launched one by one: one
  catch-up campaign stands for the latest occurrence not after now (starting at it, named
  after its local date), then ``next_run_at`` moves to the first occurrence after now. A
  run at the same instant again finds nothing due: nothing is launched twice.
- **A window already over is skipped.** When even the latest missed occurrence's campaign
  would already be past its deadline (its undecided items would be auto-actioned at once),
  nothing is launched: the skip is noted (``last_error``, ``campaign_schedule.run_failed``)
  and the schedule waits for its next occurrence.
- **Failures are retried.** Each launch runs in a savepoint: one that fails with a domain
  error (an overlap with an active campaign, a definition no longer valid) is rolled back
  alone, the error is noted in ``last_error`` and audited ``campaign_schedule.run_failed``
  when it differs from the one already noted (no new event every run for the same failure),
  ``next_run_at`` stays, and the occurrence is tried again at the next run; the other
  schedules still launch.

Due schedules are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers
running the job at once never launch the same occurrence twice (SQLite has one writer).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import recurrence
from certification.models import CampaignSchedule
from certification.schedules import OBJECT_TYPE, launch_occurrence
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.errors import DomainError, InvalidInput
from idgov.types import Actor

log = logging.getLogger(__name__)

ERROR_MAX = 2000  # the size of cert_schedules.last_error


def _due(session: Session, now: datetime) -> list[CampaignSchedule]:
    stmt = (select(CampaignSchedule)
            .where(CampaignSchedule.enabled.is_(True), CampaignSchedule.next_run_at <= now)
            .order_by(CampaignSchedule.next_run_at, CampaignSchedule.id)
            .with_for_update(skip_locked=True))
    return list(session.scalars(stmt.execution_options(populate_existing=True)))


def _note_failure(session: Session, schedule: CampaignSchedule, message: str, *,
                  occurrence: datetime, next_run_at: datetime | None, actor: Actor,
                  clock: Clock) -> None:
    """Keep ``message`` in ``last_error`` (audited when it is new) and set ``next_run_at``."""
    if schedule.last_error == message and schedule.next_run_at == next_run_at:
        return
    before = snapshot(schedule)
    audited = schedule.last_error != message
    schedule.last_error = message
    schedule.next_run_at = next_run_at
    schedule.updated_at = clock.now()
    session.flush()
    if audited:
        record(session, actor=actor, action="campaign_schedule.run_failed",
               object_type=OBJECT_TYPE, object_id=schedule.id, clock=clock, before=before,
               after=snapshot(schedule), context={"error": message, "occurrence": occurrence})


def _describe(error: DomainError) -> str:
    fields = error.errors if isinstance(error, InvalidInput) else []
    text = error.detail + "".join(f"; {e.field}: {e.message}" for e in fields)
    return text[:ERROR_MAX]


def _local(instant: datetime, schedule: CampaignSchedule) -> str:
    return f"{instant.astimezone(recurrence.zone(schedule.time_zone)):%Y-%m-%d %H:%M}"


def launch_due(session: Session, *, actor: Actor, clock: Clock) -> int:
    """Launch the campaign of every due schedule, earliest due first; how many were
    launched. Failures are noted on the schedule (see the module), never raised."""
    now = clock.now()
    launched = 0
    for schedule in _due(session, now):
        assert schedule.next_run_at is not None
        occurrence = recurrence.latest_due(schedule.recurrence, schedule.time_zone,
                                           schedule.next_run_at, now)
        ends = recurrence.deadline(occurrence, schedule.time_zone, schedule.duration_days)
        if ends <= now:
            following = recurrence.next_after(schedule.recurrence, schedule.time_zone, now)
            _note_failure(
                session, schedule, f"the campaign of {_local(occurrence, schedule)} was not "
                f"launched: its deadline ({_local(ends, schedule)}) had passed when it could "
                "be; the schedule goes on at its next occurrence", occurrence=occurrence,
                next_run_at=following, actor=actor, clock=clock)
            continue
        try:
            with session.begin_nested():
                launch_occurrence(session, schedule=schedule, occurrence=occurrence,
                                  actor=actor, clock=clock, by_hand=False)
            launched += 1
        except DomainError as error:
            log.warning("recurring launch of schedule %s failed: %s", schedule.id,
                        error.detail)
            _note_failure(session, schedule, _describe(error), occurrence=occurrence,
                          next_run_at=schedule.next_run_at, actor=actor, clock=clock)
    return launched
