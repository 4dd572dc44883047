"""lifecycle.process_due: the periodic job that runs due lifecycle events.

The workers' periodic jobs (:mod:`idgov.provisioning.periodic`) call
:func:`run_due_events` every ``settings.lifecycle_interval_minutes``. Each batch of events
runs in its own unit of work (one commit per batch), so a large day of terminations neither
holds one long transaction nor loses what was done when a later batch fails. Concurrent
workers share the events through ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so none runs twice.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import Clock
from idgov.db.session import unit_of_work
from idgov.lifecycle import events
from idgov.types import Actor

log = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_BATCHES = 100


def run_due_events(session_factory: sessionmaker[Session], *, clock: Clock,
                   actor: Actor | None = None, batch_size: int = BATCH_SIZE,
                   max_batches: int = MAX_BATCHES) -> int:
    """Run the lifecycle events due at ``clock.now()``, ``batch_size`` per transaction,
    until none is left (or ``max_batches`` batches ran); how many ran. An event that keeps
    failing stays scheduled (see :func:`idgov.lifecycle.events.process_due`) and does not
    make this loop spin: a batch that ran nothing ends it."""
    actor = actor or events.LIFECYCLE_ACTOR
    total = 0
    for _ in range(max_batches):
        with unit_of_work(session_factory) as session:
            ran = events.process_due(session, actor=actor, clock=clock, limit=batch_size)
        total += ran
        if ran == 0:
            break
    if total:
        log.info("lifecycle: %d due event(s) run", total)
    return total
