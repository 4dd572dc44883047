"""Periodic jobs the workers run, so that no cron is needed (embedded mode and ``idgov worker``).

:func:`run_due_jobs` runs what is due at ``clock.now()`` — the clock decides, nothing here
sleeps — each job in its own transaction(s) and guarded: one that raises is logged (its error
class, never its message, which could carry a target's answer) and the others still run.

1. **First aggregation**: an application whose connector can list accounts and entitlements
   (manual ones never can) and that has no succeeded aggregation run yet is aggregated once,
   when its target answers ``test_connection``. A target that does not answer is tried again
   at the next run; an aggregation that failed on the target is tried again after
   :data:`AGGREGATION_RETRY`.
2. **Scheduled reconciliation** (report only, never remediation): an aggregated application
   whose last reconciliation run started ``settings.reconcile_interval_hours`` ago or more
   (or that has none). A target that does not answer is tried again at the next run.
3. **The request sweep** (escalations, expiry warnings, expiries, fulfilment task
   escalations) every ``settings.sweep_interval_minutes``, each part in its own transaction.
4. **Mail delivery** of pending notifications, every run, when ``smtp_host`` is set.
5. **HR lifecycle events** that are due (prehires starting, terminations taking effect,
   leavers' accounts deleted after retention) every ``settings.lifecycle_interval_minutes``;
   row locks share them between workers.

Which job ran when: for (1) and (2) the ``reconciliation_runs`` rows say it (shared by every
process). For (3) and (4) each process remembers when it last ran them. On PostgreSQL every
job runs under a transaction-scoped advisory lock (``pg_try_advisory_xact_lock``), taken
without waiting: a job another process is running is skipped, and (1)/(2) check again
under the lock whether they are still due, so several workers never aggregate or reconcile
an application twice. SQLite means one process anyway.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CAN_LIST_ACCOUNTS, CAN_LIST_ENTITLEMENTS, Connector
from connectors.errors import ConnectorError
from idgov.approvals.tasks import escalate_overdue
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.fulfilment.tasks import escalate_overdue_tasks
from idgov.lifecycle.tasks import run_due_events
from idgov.models.application import Application
from idgov.models.provisioning import ReconciliationRun
from idgov.notifications.tasks import deliver_pending
from idgov.reconciliation import service as reconciliation
from idgov.requests.tasks import expire_grants, warn_expiring
from idgov.types import Actor

log = logging.getLogger(__name__)

AGGREGATION_RETRY = timedelta(minutes=15)
NOT_LISTABLE_KINDS = frozenset({"manual"})
COUNT_KEYS = ("aggregated", "reconciled", "unreachable", "escalated", "warned", "expired",
              "tasks_escalated", "mailed", "lifecycle", "errors")


# Jobs of modules the core does not import (certification): name -> (interval, job). The
# job takes (session_factory, settings, clock, actor) and returns what it did, counted.
PluginJob = Callable[[sessionmaker[Session], Settings, Clock, Actor], int]
_PLUGIN_JOBS: dict[str, tuple[timedelta, PluginJob]] = {}


def register_job(name: str, *, every: timedelta, job: PluginJob) -> None:
    """Have the workers run ``job`` every ``every`` (at most; in-process timing, like the
    sweep), its result counted under ``name``. The composition roots call this for modules
    the core never imports; registering a name again replaces its job."""
    _PLUGIN_JOBS[name] = (every, job)


class _LastRuns:
    """When this process last ran each in-process job (per session factory)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: dict[str, datetime] = {}


_last_runs: weakref.WeakKeyDictionary[sessionmaker[Session], _LastRuns] = \
    weakref.WeakKeyDictionary()
_last_runs_lock = threading.Lock()


def _last_runs_of(factory: sessionmaker[Session]) -> _LastRuns:
    with _last_runs_lock:
        found = _last_runs.get(factory)
        if found is None:
            found = _last_runs[factory] = _LastRuns()
        return found


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for a job name."""
    digest = hashlib.sha256(f"idgov.periodic:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _exclusive(factory: sessionmaker[Session], name: str) -> Iterator[bool]:
    """True when this process may run job ``name`` now: on PostgreSQL, while a transaction
    of its own holds the job's advisory lock (released when the block ends, or when the
    process dies); elsewhere always."""
    session = factory()
    try:
        if session.get_bind().dialect.name != "postgresql":
            yield True
            return
        acquired = bool(session.scalar(select(func.pg_try_advisory_xact_lock(_lock_key(name)))))
        yield acquired
    finally:
        with suppress(Exception):
            session.rollback()
        session.close()


def _guarded(counts: dict[str, int], what: str, job: Callable[[], None]) -> None:
    try:
        job()
    except Exception as error:
        counts["errors"] += 1
        log.error("periodic job %s failed: %s", what, type(error).__name__)


# --- (1) and (2): aggregation and reconciliation ---------------------------------------------


def _latest(session: Session, application_id: uuid.UUID, kind: str,
            state: str | None = None) -> datetime | None:
    query = select(func.max(ReconciliationRun.started_at)).where(
        ReconciliationRun.application_id == application_id, ReconciliationRun.kind == kind)
    if state is not None:
        query = query.where(ReconciliationRun.state == state)
    found: datetime | None = session.scalar(query)
    return found


def _aware(moment: datetime | None, like: datetime) -> datetime | None:
    """SQLite hands back naive datetimes; compare them as the clock's zone."""
    if moment is not None and moment.tzinfo is None and like.tzinfo is not None:
        return moment.replace(tzinfo=like.tzinfo)
    return moment


def _aggregation_due(session: Session, application_id: uuid.UUID, now: datetime) -> bool:
    if _latest(session, application_id, "aggregation", "succeeded") is not None:
        return False
    failed = _aware(_latest(session, application_id, "aggregation", "failed"), now)
    return failed is None or now - failed >= AGGREGATION_RETRY


def _reconciliation_due(session: Session, application_id: uuid.UUID, now: datetime,
                        interval: timedelta | None) -> bool:
    if interval is None:
        return False
    if _latest(session, application_id, "aggregation", "succeeded") is None:
        return False
    last = _aware(_latest(session, application_id, "reconciliation"), now)
    return last is None or now - last >= interval


def _close(connector: Connector) -> None:
    with suppress(Exception):
        connector.close()


def _application_jobs(factory: sessionmaker[Session], application_id: uuid.UUID, *,
                      settings: Settings, clock: Clock, actor: Actor,
                      counts: dict[str, int]) -> None:
    """Aggregate and/or reconcile one application when due (under its lock)."""
    hours = settings.reconcile_interval_hours
    interval = timedelta(hours=hours) if hours > 0 else None
    with _exclusive(factory, f"reconciliation:{application_id}") as mine:
        if not mine:
            return
        now = clock.now()
        with unit_of_work(factory) as session:
            application = session.get(Application, application_id)
            if application is None:
                return
            aggregate_due = _aggregation_due(session, application_id, now)
            if not aggregate_due and not _reconciliation_due(session, application_id, now,
                                                             interval):
                return
            name = application.name
            connector = reconciliation.connector_for(application, settings)
        try:
            if not {CAN_LIST_ACCOUNTS, CAN_LIST_ENTITLEMENTS} <= connector.capabilities:
                return
            try:
                connector.test_connection()
            except ConnectorError as error:
                counts["unreachable"] += 1
                log.info("periodic jobs: %s does not answer (%s); trying again later", name,
                         error.category)
                return
            if aggregate_due:
                with unit_of_work(factory) as session:
                    run = reconciliation.aggregate(session, application_id=application_id,
                                                   connector=connector, actor=actor,
                                                   clock=clock)
                    state = run.state
                counts["aggregated"] += state == "succeeded"
                log.info("periodic jobs: first aggregation of %s %s", name, state)
            with unit_of_work(factory) as session:
                if not _reconciliation_due(session, application_id, clock.now(), interval):
                    return
                run = reconciliation.reconcile(session, application_id=application_id,
                                               connector=connector, remediate=False,
                                               actor=actor, clock=clock)
                state = run.state
            counts["reconciled"] += state == "succeeded"
            log.info("periodic jobs: scheduled reconciliation of %s %s", name, state)
        finally:
            _close(connector)


def _listable_applications(factory: sessionmaker[Session]) -> list[uuid.UUID]:
    with unit_of_work(factory) as session:
        return list(session.scalars(
            select(Application.id)
            .where(Application.connector_kind.not_in(NOT_LISTABLE_KINDS))
            .order_by(Application.name)))


# --- (3) and (4): in-process cadence ---------------------------------------------------------


def _due_in_process(factory: sessionmaker[Session], job: str, now: datetime,
                    interval: timedelta) -> bool:
    """True (and noted as run now) when ``job`` last ran in this process ``interval`` ago
    or more, or never."""
    runs = _last_runs_of(factory)
    with runs.lock:
        last = runs.at.get(job)
        if last is not None and now - last < interval:
            return False
        runs.at[job] = now
        return True


def _sweep(factory: sessionmaker[Session], *, settings: Settings, clock: Clock,
           actor: Actor, counts: dict[str, int]) -> None:
    """The request sweep's parts, each in its own transaction and guarded."""
    with _exclusive(factory, "requests-sweep") as mine:
        if not mine:
            return

        def part(key: str, run: Callable[[Session], int]) -> Callable[[], None]:
            def job() -> None:
                with unit_of_work(factory) as session:
                    counts[key] += run(session)
            return job

        _guarded(counts, "sweep: escalations", part("escalated", lambda s: escalate_overdue(
            s, clock=clock, actor=actor, extension_hours=settings.escalation_extension_hours)))
        _guarded(counts, "sweep: expiry warnings", part("warned", lambda s: warn_expiring(
            s, clock=clock, actor=actor, warning_days=settings.expiry_warning_days)))
        _guarded(counts, "sweep: expiries", part("expired", lambda s: expire_grants(
            s, clock=clock, actor=actor)))
        _guarded(counts, "sweep: task escalations", part(
            "tasks_escalated", lambda s: escalate_overdue_tasks(s, clock=clock, actor=actor)))


def _mail(factory: sessionmaker[Session], *, settings: Settings, clock: Clock,
          counts: dict[str, int]) -> None:
    with _exclusive(factory, "notifications-delivery") as mine:
        if mine:
            counts["mailed"] += deliver_pending(factory, settings=settings, clock=clock).sent


# --- the entry point -------------------------------------------------------------------------


def run_due_jobs(session_factory: sessionmaker[Session], *, settings: Settings, clock: Clock,
                 actor: Actor | None = None) -> dict[str, int]:
    """Run every periodic job that is due now (see the module doc); what they did, counted:
    ``aggregated``, ``reconciled`` (runs that succeeded), ``unreachable`` (targets skipped),
    ``escalated``, ``warned``, ``expired``, ``tasks_escalated`` (the sweep), ``mailed``,
    ``lifecycle`` (lifecycle events applied),
    ``errors`` (jobs that raised)."""
    actor = actor or Actor.system("periodic-jobs")
    counts = dict.fromkeys(COUNT_KEYS, 0)
    now = clock.now()

    def applications() -> None:
        for application_id in _listable_applications(session_factory):
            _guarded(counts, f"aggregation/reconciliation of application {application_id}",
                     partial(_application_jobs, session_factory, application_id,
                             settings=settings, clock=clock, actor=actor, counts=counts))

    _guarded(counts, "aggregation/reconciliation", applications)
    minutes = settings.sweep_interval_minutes
    if minutes > 0 and _due_in_process(session_factory, "requests-sweep", now,
                                       timedelta(minutes=minutes)):
        _guarded(counts, "requests sweep", lambda: _sweep(
            session_factory, settings=settings, clock=clock, actor=actor, counts=counts))
    minutes = settings.lifecycle_interval_minutes
    if minutes > 0 and _due_in_process(session_factory, "lifecycle-events", now,
                                       timedelta(minutes=minutes)):
        def _lifecycle() -> None:
            counts["lifecycle"] += run_due_events(session_factory, clock=clock, actor=actor)
        _guarded(counts, "lifecycle events", _lifecycle)
    for name, (every, job) in sorted(_PLUGIN_JOBS.items()):
        if _due_in_process(session_factory, f"plugin:{name}", now, every):
            def _plugin(name: str = name, job: PluginJob = job) -> None:
                counts[name] = counts.get(name, 0) + job(session_factory, settings, clock,
                                                         actor)
            _guarded(counts, name, _plugin)
    if settings.smtp_host:
        _guarded(counts, "notification delivery", lambda: _mail(
            session_factory, settings=settings, clock=clock, counts=counts))
    return counts
