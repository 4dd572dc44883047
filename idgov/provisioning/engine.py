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

:func:`execute_batch` runs one claim: one transaction reads every operation with what it
needs (applications, identities, accounts, entitlements: a few statements for the whole
batch), the calls run with no transaction open, and the outcomes are recorded, unless the
claim was lost meanwhile (the lease ran out and another worker took the operation: its
outcome counts). A claim holds at most one operation per identity and application, so its
calls may run in any order and at once:

- a connector that says it takes several calls at once (``max_concurrency`` > 1, e.g. the
  LDAP connector's pool size) gets up to ``min(parallel_calls, max_concurrency)`` calls at
  a time, and one transaction records all the batch's outcomes (each operation's own
  state and ``provisioning.attempt`` event; the line hooks once per request line). A
  worker killed in the middle leaves the whole batch running: after the lease, its
  operations run again, the ones already done included (connectors are idempotent:
  create-if-absent, ensure-member);
- a connector that can grant (revoke) several memberships at once (``grant_many(pairs)``,
  ``revoke_many(pairs)`` with ``(ref, entitlement)`` pairs: e.g. LDAP, one modify adding
  all of a group's new members; Entra, ``$batch``) gets the batch's grants (revocations) of
  the same entitlement together, up to ``grant_many_max`` per call. It returns None (all
  done) or one result per pair with its ``error``. Each operation still has its own outcome
  and its own audited attempt. When the whole call fails transiently (the target is not
  there) each of its operations has that failure; any other failure of the whole call (a
  member refused, the group missing) sends them again one by one, so each gets its own
  outcome;
- any other connector is called one operation at a time, each outcome recorded before
  the next call (a killed worker leaves only the operation in hand undecided).

Outcomes:

- success: succeeded (as :func:`idgov.provisioning.service.complete_operation`, so request
  lines follow), the account recorded for ``create_account``, the breaker closed;
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

The circuit breaker's row is written only when something changes: a transient failure, or
an answer while the breaker is not closed and clean (not on every success).

Claims scale with the open operations only (see
:func:`idgov.provisioning.repository.due_candidates`): finished operations are never read.

Tunables (module defaults, overridden by settings ``provisioning_<name>`` when present):
retry_base_seconds, retry_cap_seconds, max_attempts, breaker_threshold,
breaker_cooldown_seconds, lease_seconds, batch_size, parallel_calls, grant_many_max.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import AccountRef, AccountSpec
from connectors.errors import ConnectorError, DataError
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import accounts, health, repository
from idgov.provisioning.calls import run_calls
from idgov.provisioning.connections import (
    DEFAULT_CACHE,
    DEFAULT_LIMITER,
    ConnectorCache,
    RateLimiter,
    Target,
)
from idgov.provisioning.engine_base import IN_MAX, EngineConfig, Outcome, Work, chunks
from idgov.provisioning.outcomes import finish_batch, open_task
from idgov.types import Actor

log = logging.getLogger(__name__)


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


def execute(session_factory: sessionmaker[Session], *, operation_id: uuid.UUID,
            worker_id: str, settings: Settings | None, clock: Clock,
            connectors: ConnectorCache | None = None, rng: random.Random | None = None,
            limiter: RateLimiter | None = None, config: EngineConfig | None = None) -> str:
    """Run one claimed operation and record its outcome; returns its state afterwards."""
    states = execute_batch(session_factory, operation_ids=[operation_id], worker_id=worker_id,
                           settings=settings, clock=clock, connectors=connectors, rng=rng,
                           limiter=limiter, config=config)
    return states[operation_id]


def execute_batch(session_factory: sessionmaker[Session], *,
                  operation_ids: Sequence[uuid.UUID], worker_id: str,
                  settings: Settings | None, clock: Clock,
                  connectors: ConnectorCache | None = None, rng: random.Random | None = None,
                  limiter: RateLimiter | None = None,
                  config: EngineConfig | None = None) -> dict[uuid.UUID, str]:
    """Run a claim's operations and record their outcomes; returns each one's state after.

    The operations of one claim belong to different identities or applications (the claim
    takes only the first open operation of each), so they may run in any order and at the
    same time. One transaction reads them all, the calls run with no transaction open,
    and one transaction records every outcome (see the module docstring).
    """
    config = config or EngineConfig.from_settings(settings)
    cache = connectors or DEFAULT_CACHE
    actor = actor_of(worker_id)
    with unit_of_work(session_factory) as session:
        works, states = _read_batch(session, operation_ids, worker_id=worker_id, actor=actor,
                                    clock=clock)
    if works:
        def finish(done: Sequence[Work]) -> None:
            states.update(finish_batch(session_factory, done, worker_id=worker_id,
                                        actor=actor, clock=clock, config=config,
                                        rng=rng or _RNG))

        together = run_calls(works, settings=settings or Settings(), cache=cache,
                              limiter=limiter or DEFAULT_LIMITER, config=config,
                              finish_now=finish)
        if together:
            finish(together)
    return {i: states.get(i, "missing") for i in operation_ids}


_RNG = random.Random()


def _read_batch(session: Session, operation_ids: Sequence[uuid.UUID], *, worker_id: str,
                actor: Actor, clock: Clock) -> tuple[list[Work], dict[uuid.UUID, str]]:
    """The claimed operations still ours, with what each needs, read in a few statements
    (applications, identities, accounts and entitlements of the whole batch at once)."""
    ops: dict[uuid.UUID, ProvisioningOperation] = {}
    for chunk in chunks(list(operation_ids), IN_MAX):
        ops.update((op.id, op) for op in session.scalars(
            select(ProvisioningOperation).where(ProvisioningOperation.id.in_(chunk))))
    states: dict[uuid.UUID, str] = {}
    mine: list[ProvisioningOperation] = []
    for operation_id in operation_ids:
        op = ops.get(operation_id)
        if op is None:
            states[operation_id] = "missing"
        elif op.state != "running" or op.claimed_by != worker_id:
            states[operation_id] = op.state
        else:
            mine.append(op)
    if not mine:
        return [], states
    batch = _BatchData.load(session, mine)
    works: list[Work] = []
    for op in mine:
        application = batch.applications[op.application_id]
        target = batch.targets[op.application_id]
        if target.kind == "manual":
            states[op.id] = open_task(session, op, actor=actor, clock=clock)
            continue
        work = Work(operation_id=op.id, action=op.action, attempt=op.attempts, target=target)
        try:
            _prepare(session, op, application, work, batch)
        except ConnectorError as error:
            work.outcome = Outcome(error=error, called=False)
        else:
            if work.nothing_to_do is not None:
                work.outcome = Outcome(result=None, called=False)
        works.append(work)
    return works, states


@dataclass
class _BatchData:
    """What a batch's operations refer to, read once for the batch."""

    applications: dict[uuid.UUID, Application]
    targets: dict[uuid.UUID, Target]
    identities: dict[uuid.UUID, Identity]
    primary: dict[tuple[uuid.UUID, uuid.UUID], Account]  # (identity, application)
    by_id: dict[uuid.UUID, Account]
    entitlements: dict[uuid.UUID, Entitlement]

    @classmethod
    def load(cls, session: Session, ops: Sequence[ProvisioningOperation]) -> _BatchData:
        def rows(model: Any, column: Any, ids: Iterable[Any], *where: Any) -> list[Any]:
            wanted = sorted({i for i in ids if i is not None}, key=str)
            found: list[Any] = []
            for chunk in chunks(wanted, IN_MAX):
                found.extend(session.scalars(select(model).where(column.in_(chunk), *where)))
            return found

        applications = {a.id: a for a in rows(Application, Application.id,
                                                (op.application_id for op in ops))}
        identities = {i.id: i for i in rows(
            Identity, Identity.id, (op.identity_id for op in ops
                                    if op.action in ("create_account", "update_account")))}
        primary: dict[tuple[uuid.UUID, uuid.UUID], Account] = {}
        for account in rows(Account, Account.identity_id, (op.identity_id for op in ops),
                            Account.application_id.in_(list(applications)),
                            Account.account_type == "primary"):
            if account.identity_id is not None:
                primary[(account.identity_id, account.application_id)] = account
        by_id = {a.id: a for a in rows(Account, Account.id, (op.account_id for op in ops))}
        entitlements = {e.id: e for e in rows(Entitlement, Entitlement.id,
                                                (op.entitlement_id for op in ops))}
        return cls(applications=applications,
                   targets={i: Target.of(a) for i, a in applications.items()},
                   identities=identities, primary=primary, by_id=by_id,
                   entitlements=entitlements)

    def account_of(self, op: ProvisioningOperation) -> Account | None:
        """As :func:`accounts.account_ref`: the operation's account, else the identity's
        primary account there; None when absent or deleted."""
        account = self.by_id.get(op.account_id) if op.account_id is not None else None
        if account is None:
            account = self.primary.get((op.identity_id, op.application_id))
        if account is None or account.status == "deleted":
            return None
        return account


def _prepare(session: Session, op: ProvisioningOperation, application: Application,
             work: Work, batch: _BatchData) -> None:
    """What to send: the account spec, the account's reference, the entitlement's name."""
    action = op.action
    if action == "create_account":
        identity = batch.identities.get(op.identity_id)
        assert identity is not None
        # The name: the identity's account's (whatever its status), else the one this
        # creation reserved (accounts.choose_username; read here from the batch's rows).
        existing = batch.primary.get((op.identity_id, op.application_id))
        username = existing.username if existing is not None and existing.username else (
            (op.detail or {}).get("username"))
        if isinstance(username, str) and username:
            work.spec = AccountSpec(username=username, attributes=accounts.render_attributes(
                application, accounts.identity_values(identity), username))
        else:
            work.spec = accounts.account_spec(session, identity=identity,
                                              application=application)
        return
    account = batch.account_of(op)
    if account is not None:
        work.ref = AccountRef(native_id=account.native_id, username=account.username or "")
    if action in ("grant", "revoke"):
        entitlement = batch.entitlements.get(op.entitlement_id) if op.entitlement_id else None
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
            identity = batch.identities.get(op.identity_id)
            assert identity is not None
            attributes = dict(accounts.account_spec(session, identity=identity,
                                                    application=application).attributes)
        work.attributes = attributes


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
        states = execute_batch(session_factory, operation_ids=ids, worker_id=worker_id,
                               settings=settings, clock=clock, connectors=connectors, rng=rng,
                               limiter=limiter, config=config)
        for operation_id in ids:
            stats.count(states[operation_id])
            if on_executed is not None:
                on_executed(operation_id, states[operation_id])
    return stats
