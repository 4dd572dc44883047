"""The provisioning engine: claim due operations from the table and run them on the targets.

The operation table is the queue. :func:`claim` takes due operations in one short
transaction, committed at once: on PostgreSQL the candidate rows are locked ``FOR UPDATE
SKIP LOCKED`` so concurrent workers claim disjoint rows; on SQLite the transaction starts
with a write, so it holds the database's write lock while it reads and claims. A claim sets
the operation running for the worker until ``lease_until`` and counts an attempt; a worker
that dies leaves its operations to be claimed again when their lease runs out (connectors
are idempotent, so running a half-done operation again is safe).

Order: an operation is due only when no earlier open operation (lower ordinal, then older)
of the same identity and application exists, so an account is created before its
memberships and a leaver's disable is not overtaken. Other identities' operations pass.

:func:`execute` reads what the operation needs in one transaction, calls the connector with
no transaction open, then records the outcome in one transaction, unless the claim was lost
meanwhile (the lease ran out and another worker took the operation: its outcome counts):

- success: succeeded (:func:`idgov.provisioning.service.complete_operation`, so request lines
  follow), the account recorded for ``create_account``, the breaker closed;
- transient failure (unavailable, timeout, throttled): ``retry_scheduled`` after a backoff
  of ``base * 2**(n-1)`` seconds capped at ``cap``, with full jitter (uniform between 0 and
  that), and never sooner than the target's ``retry_after``. ``n`` counts the failures
  charged to the operation; after ``max_attempts`` of them it fails. A failure that is the
  target's (its circuit breaker is open after it) is not charged: the operation waits for
  the target however long it is down;
- permanent failure (data error, policy violation, authentication, not supported): failed,
  classified, routed to the application's resolution group, whose members are notified.

Every attempt is audited (``provisioning.attempt``, with its outcome). A manual
application's operation becomes a fulfilment task and stays running without a lease until
the task ends. Applications with ``rate_limit_per_second`` are held to it per process
(:class:`idgov.provisioning.connections.RateLimiter`).

Tunables (module defaults, overridden by settings ``provisioning_<name>`` when present):
retry_base_seconds, retry_cap_seconds, max_attempts, breaker_threshold,
breaker_cooldown_seconds, lease_seconds, batch_size.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import AccountRef, AccountSpec, Connector
from connectors.errors import ConnectorError, DataError, TargetUnavailable
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.catalog import Entitlement
from idgov.models.identity import GroupMember, Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.notifications.service import notify
from idgov.provisioning import accounts, health, repository, service
from idgov.provisioning.connections import (
    DEFAULT_CACHE,
    DEFAULT_LIMITER,
    ConnectorCache,
    RateLimiter,
    Target,
)
from idgov.types import Actor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    retry_base_seconds: float = 30.0
    retry_cap_seconds: float = 3600.0
    max_attempts: int = 8
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 60.0
    lease_seconds: int = 300
    batch_size: int = 10

    @classmethod
    def from_settings(cls, settings: Settings | None) -> EngineConfig:
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = getattr(settings, f"provisioning_{f.name}", None)
            if value is not None:
                values[f.name] = value
        return cls(**values)


@dataclass
class RunStats:
    """What :func:`run_until_idle` did."""

    rounds: int = 0
    claimed: int = 0
    succeeded: int = 0
    retry_scheduled: int = 0
    failed: int = 0
    running: int = 0  # handed to a fulfilment task, or lost to another worker

    def count(self, state: str) -> None:
        if state in ("succeeded", "retry_scheduled", "failed"):
            setattr(self, state, getattr(self, state) + 1)
        else:
            self.running += 1


def actor_of(worker_id: str) -> Actor:
    return Actor(type="system", id=None, name=f"provisioning-worker {worker_id}"[:200])


# --- claiming --------------------------------------------------------------------------------


def claim(session_factory: sessionmaker[Session], *, worker_id: str, clock: Clock,
          limit: int = 10, lease_seconds: int = 300,
          breaker_cooldown_seconds: float = EngineConfig.breaker_cooldown_seconds,
          ) -> list[uuid.UUID]:
    """Claim up to ``limit`` due operations for ``worker_id`` (committed before returning),
    in queue order. Applications behind an open breaker are skipped; one whose cool-down is
    over gets one probe; a rate-limited application about a second's worth of operations."""
    now = clock.now()
    cooldown = timedelta(seconds=breaker_cooldown_seconds)
    with unit_of_work(session_factory) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        if not postgres:
            # Take SQLite's write lock first: reading then writing in a deferred
            # transaction could fail if another writer committed in between.
            session.execute(text("UPDATE target_health SET state = state WHERE 1 = 0"))
        gate = health.gate(session, now=now)
        candidates = repository.due_candidates(
            session, now=now, exclude_applications=gate.blocked, limit=limit * 4,
            lock=postgres)
        caps = _rate_caps(session, {c.application_id for c in candidates})
        chosen: list[uuid.UUID] = []
        per_app: dict[uuid.UUID, int] = {}
        refused: set[uuid.UUID] = set()
        for c in candidates:
            if len(chosen) >= limit:
                break
            app_id = c.application_id
            if app_id in refused or _not_yet(c.detail, now):
                continue
            taken = per_app.get(app_id, 0)
            if app_id in gate.probe_due:
                if taken >= 1:
                    continue
                if not health.take_probe(session, application_id=app_id, now=now,
                                         cooldown=cooldown):
                    refused.add(app_id)
                    continue
            elif app_id in caps and taken >= caps[app_id]:
                continue
            per_app[app_id] = taken + 1
            chosen.append(c.id)
        repository.mark_claimed(session, chosen, worker_id=worker_id, now=now,
                                lease_until=now + timedelta(seconds=lease_seconds))
    return chosen


def _not_yet(detail: dict[str, Any], now: datetime) -> bool:
    not_before = detail.get("not_before")
    if not isinstance(not_before, str):
        return False
    try:
        return datetime.fromisoformat(not_before) > now
    except ValueError:
        return False


def _rate_caps(session: Session, app_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not app_ids:
        return {}
    rows = session.execute(select(Application.id, Application.rate_limit_per_second)
                           .where(Application.id.in_(list(app_ids)),
                                  Application.rate_limit_per_second.is_not(None)))
    return {i: max(1, math.ceil(r)) for i, r in rows if r and r > 0}


# --- executing -------------------------------------------------------------------------------


@dataclass
class _Work:
    """One claimed operation, read before the call."""

    operation_id: uuid.UUID
    action: str
    attempt: int
    target: Target
    ref: AccountRef | None = None
    spec: AccountSpec | None = None
    entitlement: str | None = None
    attributes: dict[str, Any] | None = None
    nothing_to_do: str | None = None


@dataclass
class _Outcome:
    result: Any = None
    error: ConnectorError | None = None
    called: bool = True  # the target was reached (or tried)


def execute(session_factory: sessionmaker[Session], *, operation_id: uuid.UUID,
            worker_id: str, settings: Settings | None, clock: Clock,
            connectors: ConnectorCache | None = None, rng: random.Random | None = None,
            limiter: RateLimiter | None = None, config: EngineConfig | None = None) -> str:
    """Run one claimed operation and record its outcome; returns its state afterwards."""
    config = config or EngineConfig.from_settings(settings)
    cache = connectors or DEFAULT_CACHE
    actor = actor_of(worker_id)
    with unit_of_work(session_factory) as session:
        op = session.get(ProvisioningOperation, operation_id)
        if op is None:
            return "missing"
        if op.state != "running" or op.claimed_by != worker_id:
            return op.state
        application = session.get(Application, op.application_id)
        assert application is not None
        target = Target.of(application)
        if target.kind == "manual":
            return _open_task(session, op, actor=actor, clock=clock)
        work = _Work(operation_id=op.id, action=op.action, attempt=op.attempts, target=target)
        early: ConnectorError | None = None
        try:
            _prepare(session, op, application, work)
        except ConnectorError as error:
            early = error
    if early is not None:
        outcome = _Outcome(error=early, called=False)
    elif work.nothing_to_do is not None:
        outcome = _Outcome(result=None, called=False)
    else:
        outcome = _call(work, settings=settings or Settings(), cache=cache,
                        limiter=limiter or DEFAULT_LIMITER)
    with unit_of_work(session_factory) as session:
        return _finish(session, work, outcome, worker_id=worker_id, actor=actor, clock=clock,
                       config=config, rng=rng or _RNG)


_RNG = random.Random()


def _prepare(session: Session, op: ProvisioningOperation, application: Application,
             work: _Work) -> None:
    """What to send: the account spec, the account's reference, the entitlement's name."""
    action = op.action
    if action == "create_account":
        identity = session.get(Identity, op.identity_id)
        assert identity is not None
        work.spec = accounts.account_spec(session, identity=identity, application=application)
        return
    work.ref = accounts.account_ref(session, operation=op)
    if action in ("grant", "revoke"):
        entitlement = session.get(Entitlement, op.entitlement_id) if op.entitlement_id else None
        if entitlement is None:
            raise DataError("the operation names no entitlement")
        work.entitlement = entitlement.native_id
    if work.ref is None:
        if action in ("revoke", "disable_account", "delete_account"):
            work.nothing_to_do = "the identity has no account there: nothing to take away"
            return
        raise DataError(f"the identity has no account in {application.name} "
                        f"(needed to {action.replace('_', ' ')})")
    if action == "update_account":
        attributes = (op.detail or {}).get("attributes")
        if not isinstance(attributes, dict):
            identity = session.get(Identity, op.identity_id)
            assert identity is not None
            attributes = dict(accounts.account_spec(session, identity=identity,
                                                    application=application).attributes)
        work.attributes = attributes


def _call(work: _Work, *, settings: Settings, cache: ConnectorCache,
          limiter: RateLimiter) -> _Outcome:
    """Call the target, outside any transaction; every failure becomes a ConnectorError."""
    try:
        connector = cache.get(work.target, settings)
        limiter.acquire(work.target.application_id, work.target.rate_limit_per_second)
        return _Outcome(result=_dispatch(connector, work))
    except ConnectorError as error:
        if error.transient:
            cache.discard(work.target.application_id)
        return _Outcome(error=error)
    except Exception as error:
        log.warning("operation %s: unexpected %s from the %s connector", work.operation_id,
                    type(error).__name__, work.target.kind)
        cache.discard(work.target.application_id)
        return _Outcome(error=TargetUnavailable(
            f"unexpected {type(error).__name__} from the {work.target.kind} connector"))


def _dispatch(connector: Connector, work: _Work) -> Any:
    action, ref = work.action, work.ref
    if action == "create_account":
        assert work.spec is not None
        return connector.create_account(work.spec)
    assert ref is not None
    if action == "grant":
        assert work.entitlement is not None
        return connector.grant(ref, work.entitlement)
    if action == "revoke":
        assert work.entitlement is not None
        return connector.revoke(ref, work.entitlement)
    if action == "update_account":
        return connector.update_account(ref, work.attributes or {})
    if action == "enable_account":
        return connector.enable_account(ref)
    if action == "disable_account":
        return connector.disable_account(ref)
    if action == "delete_account":
        return connector.delete_account(ref)
    raise DataError(f"unknown action {action!r}")


_ACCOUNT_STATUS = {"enable_account": "active", "disable_account": "disabled",
                   "delete_account": "deleted"}


def _finish(session: Session, work: _Work, outcome: _Outcome, *, worker_id: str,
            actor: Actor, clock: Clock, config: EngineConfig, rng: random.Random) -> str:
    op = session.scalars(select(ProvisioningOperation)
                         .where(ProvisioningOperation.id == work.operation_id)
                         .with_for_update()
                         .execution_options(populate_existing=True)).one()
    if (op.state != "running" or op.claimed_by != worker_id or op.attempts != work.attempt):
        log.info("operation %s: claim lost to %s; outcome dropped", op.id, op.claimed_by)
        return op.state
    app_id = work.target.application_id
    error = outcome.error
    context: dict[str, Any] = {"attempt": op.attempts, "worker": worker_id}
    if error is None:
        if outcome.called:
            health.record_answer(session, application_id=app_id, actor=actor, clock=clock)
        _on_success(session, op, work, outcome, actor=actor, clock=clock)
        context["outcome"] = "succeeded"
        if work.nothing_to_do:
            context["note"] = work.nothing_to_do
        record(session, actor=actor, action="provisioning.attempt",
               object_type="provisioning_operation", object_id=op.id, clock=clock,
               context=context)
        service.complete_operation(session, operation_id=op.id, succeeded=True, error=None,
                                   actor=actor, clock=clock)
        return "succeeded"
    context.update(error_category=error.category, error=str(error)[:2000])
    if error.transient:
        target_down = health.record_failure(
            session, application_id=app_id, error=error, threshold=config.breaker_threshold,
            cooldown=timedelta(seconds=config.breaker_cooldown_seconds), actor=actor,
            clock=clock)
        charged = int((op.detail or {}).get("transient_failures", 0)) + (0 if target_down else 1)
        if charged < config.max_attempts:
            return _schedule_retry(session, op, error, charged=charged, target_down=target_down,
                                   context=context, actor=actor, clock=clock, config=config,
                                   rng=rng)
        context["reason"] = f"{charged} transient failure(s): giving up"
    elif outcome.called:
        health.record_answer(session, application_id=app_id, actor=actor, clock=clock)
    context["outcome"] = "failed"
    record(session, actor=actor, action="provisioning.attempt",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           context=context)
    service.complete_operation(session, operation_id=op.id, succeeded=False,
                               error=str(error), error_category=error.category,
                               resolution_group_id=work.target.resolution_group_id,
                               actor=actor, clock=clock)
    _notify_failure(session, op, work.target, error, clock=clock)
    return "failed"


def backoff_seconds(failures: int, *, config: EngineConfig, rng: random.Random,
                    retry_after: float | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(failures-1))], and never less than the
    target's ``retry_after``."""
    ceiling = min(config.retry_cap_seconds,
                  config.retry_base_seconds * 2 ** max(0, failures - 1))
    delay = rng.uniform(0, ceiling)
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return delay


def _schedule_retry(session: Session, op: ProvisioningOperation, error: ConnectorError, *,
                    charged: int, target_down: bool, context: dict[str, Any], actor: Actor,
                    clock: Clock, config: EngineConfig, rng: random.Random) -> str:
    before = snapshot(op)
    now = clock.now()
    delay = backoff_seconds(max(1, charged), config=config, rng=rng,
                            retry_after=error.retry_after)
    op.state = "retry_scheduled"
    op.next_attempt_at = now + timedelta(seconds=delay)
    op.claimed_by = None
    op.lease_until = None
    op.last_error = str(error)[:2000]
    op.error_category = error.category
    op.detail = {**(op.detail or {}), "transient_failures": charged}
    op.updated_at = now
    session.flush()
    context.update(outcome="retry_scheduled", next_attempt_at=op.next_attempt_at,
                   charged=not target_down, transient_failures=charged)
    record(session, actor=actor, action="provisioning.attempt",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           before=before, after=snapshot(op), context=context)
    return "retry_scheduled"


def _on_success(session: Session, op: ProvisioningOperation, work: _Work, outcome: _Outcome, *,
                actor: Actor, clock: Clock) -> None:
    if op.action == "create_account" and isinstance(outcome.result, AccountRef):
        accounts.record_account_created(session, operation=op, ref=outcome.result,
                                        actor=actor, clock=clock)
        return
    status = _ACCOUNT_STATUS.get(op.action)
    if status is None or work.nothing_to_do:
        return
    account = (session.get(Account, op.account_id) if op.account_id else
               accounts.primary_account(session, identity_id=op.identity_id,
                                        application_id=op.application_id))
    if account is None or account.status == status:
        return
    before = snapshot(account)
    account.status = status
    account.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="account.update", object_type="account",
           object_id=account.id, clock=clock, before=before, after=snapshot(account),
           context={"operation_id": str(op.id)})


def _notify_failure(session: Session, op: ProvisioningOperation, target: Target,
                    error: ConnectorError, *, clock: Clock) -> None:
    group_id = target.resolution_group_id
    if group_id is None:
        log.warning("operation %s failed (%s) and %s has no resolution group", op.id,
                    error.category, target.name)
        return
    members = session.scalars(select(GroupMember.identity_id)
                              .where(GroupMember.group_id == group_id)
                              .order_by(GroupMember.identity_id))
    subject = f"Provisioning failed on {target.name}: {op.action.replace('_', ' ')}"
    body = (f"Operation {op.id} ({op.action}) on {target.name} failed after "
            f"{op.attempts} attempt(s).\nCategory: {error.category}\nError: {error}\n"
            "Retry, cancel or resolve it in the failed-operations queue.")
    for member in members:
        notify(session, recipient_id=member, kind="provisioning.failed", subject=subject,
               body=body, object_type="provisioning_operation", object_id=str(op.id),
               dedupe_key=f"provisioning.failed:{op.id}:{op.attempts}:{member}",
               clock=clock)


def _open_task(session: Session, op: ProvisioningOperation, *, actor: Actor,
               clock: Clock) -> str:
    """A manual application: a fulfilment task for people; the operation follows it."""
    from idgov.fulfilment import service as fulfilment  # manual work builds on the engine

    before = snapshot(op)
    fulfilment.open_task(session, operation=op, actor=actor, clock=clock)
    op.lease_until = None
    op.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="provisioning.attempt",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           before=before, after=snapshot(op),
           context={"outcome": "task_opened", "attempt": op.attempts})
    return op.state


# --- running ---------------------------------------------------------------------------------


def run_until_idle(session_factory: sessionmaker[Session], *, settings: Settings | None,
                   clock: Clock, worker_id: str = "inline", max_rounds: int = 1000,
                   connectors: ConnectorCache | None = None, rng: random.Random | None = None,
                   limiter: RateLimiter | None = None, config: EngineConfig | None = None,
                   on_executed: Callable[[uuid.UUID, str], None] | None = None) -> RunStats:
    """Claim and execute until nothing is due (or ``max_rounds`` claims were made)."""
    config = config or EngineConfig.from_settings(settings)
    stats = RunStats()
    while stats.rounds < max_rounds:
        ids = claim(session_factory, worker_id=worker_id, clock=clock,
                    limit=config.batch_size, lease_seconds=config.lease_seconds,
                    breaker_cooldown_seconds=config.breaker_cooldown_seconds)
        if not ids:
            break
        stats.rounds += 1
        stats.claimed += len(ids)
        for operation_id in ids:
            state = execute(session_factory, operation_id=operation_id, worker_id=worker_id,
                            settings=settings, clock=clock, connectors=connectors, rng=rng,
                            limiter=limiter, config=config)
            stats.count(state)
            if on_executed is not None:
                on_executed(operation_id, state)
    return stats
