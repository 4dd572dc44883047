"""The health of a target: a circuit breaker per application, and a live connection check.

The breaker (a ``target_health`` row) is closed while the target answers. After
``threshold`` transient failures in a row (unavailable, timeout) it opens: the engine stops
claiming the application's operations, which wait in the queue (not failed, not charged an
attempt) with the breaker's reason visible. After ``cooldown`` one operation is let through
as a probe (half-open); its success closes the breaker, its failure opens it for another
cool-down. Throttling says nothing about the target being down and leaves the breaker alone;
a permanent error means the target answered, so it counts as an answer.

Opening and closing are audited (object ``application``, actions ``target.breaker_open`` and
``target.breaker_close``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connectors.errors import THROTTLED, ConnectorError
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.repository import get_or_404
from idgov.models.application import Application
from idgov.models.provisioning import TargetHealth
from idgov.provisioning import repository
from idgov.provisioning.connections import Target, build_connector
from idgov.provisioning.schemas import BreakerRead, ConnectionCheck, HealthRead
from idgov.types import Actor


@dataclass(frozen=True)
class BreakerGate:
    """Which applications the engine must not claim for now, and which may send one probe."""

    blocked: frozenset[uuid.UUID]
    probe_due: frozenset[uuid.UUID]


def breakers(session: Session,
             application_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TargetHealth]:
    if not application_ids:
        return {}
    rows = session.scalars(select(TargetHealth).where(
        TargetHealth.application_id.in_(list(application_ids))))
    return {row.application_id: row for row in rows}


def describe_open(breaker: TargetHealth) -> str:
    """The reason an operation of an unhealthy target waits."""
    since = breaker.opened_at.isoformat() if breaker.opened_at else "now"
    probe = breaker.next_probe_at.isoformat() if breaker.next_probe_at else "soon"
    what = "being probed" if breaker.state == "half_open" else "unreachable"
    return (f"waiting: the target is {what} (circuit breaker {breaker.state} since {since}, "
            f"next try {probe}): {breaker.last_error or 'no answer'}")


def gate(session: Session, *, now: datetime) -> BreakerGate:
    """Open breakers before their probe time block their application; past it, one probe."""
    blocked: set[uuid.UUID] = set()
    probe: set[uuid.UUID] = set()
    for row in session.scalars(select(TargetHealth).where(TargetHealth.state != "closed")):
        if row.next_probe_at is not None and row.next_probe_at > now:
            blocked.add(row.application_id)
        else:
            probe.add(row.application_id)
    return BreakerGate(frozenset(blocked), frozenset(probe))


def take_probe(session: Session, *, application_id: uuid.UUID, now: datetime,
               cooldown: timedelta) -> bool:
    """Half-open the breaker for one probe; False when another worker took the probe."""
    result = session.execute(
        update(TargetHealth)
        .where(TargetHealth.application_id == application_id,
               TargetHealth.state != "closed",
               (TargetHealth.next_probe_at.is_(None)) | (TargetHealth.next_probe_at <= now))
        .values(state="half_open", next_probe_at=now + cooldown)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


def _locked(session: Session, application_id: uuid.UUID) -> TargetHealth:
    """The breaker row of an application, created closed when missing, locked (PostgreSQL)
    until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(TargetHealth).values(application_id=application_id, state="closed",
                                                consecutive_failures=0)
                    .on_conflict_do_nothing(index_elements=["application_id"]))
    return session.scalars(select(TargetHealth)
                           .where(TargetHealth.application_id == application_id)
                           .with_for_update()
                           .execution_options(populate_existing=True)).one()


def record_answer(session: Session, *, application_id: uuid.UUID, actor: Actor,
                  clock: Clock) -> None:
    """The target answered (success, or a permanent refusal): the breaker closes."""
    row = _locked(session, application_id)
    now = clock.now()
    was = row.state
    before = snapshot(row)
    row.state = "closed"
    row.consecutive_failures = 0
    row.opened_at = None
    row.next_probe_at = None
    row.last_checked_at = now
    row.last_success_at = now
    session.flush()
    if was != "closed":
        record(session, actor=actor, action="target.breaker_close", object_type="application",
               object_id=application_id, clock=clock, before=before, after=snapshot(row))


def record_failure(session: Session, *, application_id: uuid.UUID, error: ConnectorError,
                   threshold: int, cooldown: timedelta, actor: Actor, clock: Clock) -> bool:
    """A transient failure; True when the breaker is open (or half-open) after it, that is
    when the failure is the target's and not the operation's."""
    row = _locked(session, application_id)
    now = clock.now()
    row.last_checked_at = now
    row.last_error = str(error)[:2000]
    row.last_error_category = error.category
    if error.category == THROTTLED:
        session.flush()
        return row.state != "closed"
    before = snapshot(row)
    row.consecutive_failures = (row.consecutive_failures or 0) + 1
    opening = row.state == "half_open" or (
        row.state == "closed" and row.consecutive_failures >= threshold)
    if opening:
        if row.state == "closed":
            row.opened_at = now
        row.state = "open"
        row.next_probe_at = now + cooldown
    session.flush()
    if opening:
        record(session, actor=actor, action="target.breaker_open", object_type="application",
               object_id=application_id, clock=clock, before=before, after=snapshot(row),
               context={"error_category": error.category})
    return row.state != "closed"


def check(session: Session, *, application_id: uuid.UUID, settings: Settings,
          clock: Clock) -> HealthRead:
    """The breaker's state and a live ``test_connection`` of a fresh connector."""
    application = get_or_404(session, Application, application_id, what="application")
    row = session.get(TargetHealth, application_id)
    breaker = BreakerRead.model_validate(row) if row is not None else BreakerRead()
    waiting, failed = repository.count_open(session, application_id)
    target = Target.of(application)
    if target.kind == "manual":
        connection = ConnectionCheck(ok=True, error=None, checked_at=clock.now())
    else:
        connection = probe_connection(target, settings=settings, clock=clock)
    return HealthRead(application_id=application_id, connector_kind=target.kind,
                      breaker=breaker, connection=connection, waiting_operations=waiting,
                      failed_operations=failed)


def probe_connection(target: Target, *, settings: Settings, clock: Clock) -> ConnectionCheck:
    try:
        connector = build_connector(target, settings)
        try:
            connector.test_connection()
        finally:
            connector.close()
    except ConnectorError as error:
        return ConnectionCheck(ok=False, error_category=error.category, error=str(error)[:2000],
                               checked_at=clock.now())
    except Exception as error:
        return ConnectionCheck(ok=False, error_category="system_unavailable",
                               error=f"unexpected {type(error).__name__}",
                               checked_at=clock.now())
    return ConnectionCheck(ok=True, checked_at=clock.now())
