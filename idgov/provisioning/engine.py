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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, TypeVar

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
_T = TypeVar("_T")


@dataclass(frozen=True)
class EngineConfig:
    retry_base_seconds: float = 30.0
    retry_cap_seconds: float = 3600.0
    max_attempts: int = 8
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 60.0
    lease_seconds: int = 300
    batch_size: int = 100
    parallel_calls: int = 4
    grant_many_max: int = 500

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
class _Outcome:
    result: Any = None
    error: ConnectorError | None = None
    called: bool = True  # the target was reached (or tried)


@dataclass
class _Work:
    """One claimed operation, read before the call, and what the call gave."""

    operation_id: uuid.UUID
    action: str
    attempt: int
    target: Target
    ref: AccountRef | None = None
    spec: AccountSpec | None = None
    entitlement: str | None = None
    attributes: dict[str, Any] | None = None
    nothing_to_do: str | None = None
    outcome: _Outcome | None = None


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
        def finish(done: Sequence[_Work]) -> None:
            states.update(_finish_batch(session_factory, done, worker_id=worker_id,
                                        actor=actor, clock=clock, config=config,
                                        rng=rng or _RNG))

        together = _run_calls(works, settings=settings or Settings(), cache=cache,
                              limiter=limiter or DEFAULT_LIMITER, config=config,
                              finish_now=finish)
        if together:
            finish(together)
    return {i: states.get(i, "missing") for i in operation_ids}


_RNG = random.Random()


def _chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _read_batch(session: Session, operation_ids: Sequence[uuid.UUID], *, worker_id: str,
                actor: Actor, clock: Clock) -> tuple[list[_Work], dict[uuid.UUID, str]]:
    """The claimed operations still ours, with what each needs, read in a few statements
    (applications, identities, accounts and entitlements of the whole batch at once)."""
    ops: dict[uuid.UUID, ProvisioningOperation] = {}
    for chunk in _chunks(list(operation_ids), _IN_MAX):
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
    works: list[_Work] = []
    for op in mine:
        application = batch.applications[op.application_id]
        target = batch.targets[op.application_id]
        if target.kind == "manual":
            states[op.id] = _open_task(session, op, actor=actor, clock=clock)
            continue
        work = _Work(operation_id=op.id, action=op.action, attempt=op.attempts, target=target)
        try:
            _prepare(session, op, application, work, batch)
        except ConnectorError as error:
            work.outcome = _Outcome(error=error, called=False)
        else:
            if work.nothing_to_do is not None:
                work.outcome = _Outcome(result=None, called=False)
        works.append(work)
    return works, states


_IN_MAX = 500


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
            for chunk in _chunks(wanted, _IN_MAX):
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
             work: _Work, batch: _BatchData) -> None:
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


def _run_calls(works: Sequence[_Work], *, settings: Settings, cache: ConnectorCache,
               limiter: RateLimiter, config: EngineConfig,
               finish_now: Callable[[Sequence[_Work]], None]) -> list[_Work]:
    """Call the targets for every work without an outcome yet, outside any transaction;
    returns the works whose outcomes are to be recorded together.

    A connector that takes several calls at once (``max_concurrency`` > 1) or grants
    together (``grant_many``) gets the batch's calls: grants to one entitlement together,
    the calls on up to ``min(parallel_calls, max_concurrency)`` threads, and the outcomes
    recorded together afterwards. Any other connector is called one operation at a time,
    each outcome recorded (``finish_now``) before the next call, so that a worker that dies
    leaves at most the operation in hand undecided. A connector that failed transiently is
    dropped (and rebuilt next time) once the application's calls are over.
    """
    together = [w for w in works if w.outcome is not None]
    by_app: dict[uuid.UUID, list[_Work]] = {}
    for work in works:
        if work.outcome is None:
            by_app.setdefault(work.target.application_id, []).append(work)
    for app_id, items in by_app.items():
        target = items[0].target
        try:
            connector = cache.get(target, settings)
        except Exception as error:
            failure = error if isinstance(error, ConnectorError) else _unexpected(error, target)
            for work in items:
                work.outcome = _Outcome(error=failure)
            together.extend(items)
            continue
        capacity = max(1, int(getattr(connector, "max_concurrency", 1) or 1))
        if capacity == 1 and not any(callable(getattr(connector, m, None))
                                     for m in _TOGETHER.values()):
            for work in items:
                try:
                    connector = cache.get(target, settings)  # rebuilt after a failure
                except Exception as error:
                    work.outcome = _Outcome(error=error if isinstance(error, ConnectorError)
                                            else _unexpected(error, target))
                else:
                    work.outcome = _call(connector, work, limiter=limiter)
                if work.outcome.error is not None and work.outcome.error.transient:
                    cache.discard(app_id)
                finish_now([work])
            continue
        units = _units(connector, items, config=config)
        threads = min(max(1, config.parallel_calls), capacity, len(units))

        def run(unit: Sequence[_Work], connector: Connector = connector) -> None:
            _call_unit(connector, unit, limiter=limiter)

        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads,
                                    thread_name_prefix="idgov-provisioning-call") as pool:
                list(pool.map(run, units))
        else:
            for unit in units:
                run(unit)
        together.extend(items)
        if any(w.outcome is not None and w.outcome.error is not None
               and w.outcome.error.transient for w in items):
            cache.discard(app_id)
    return together


_TOGETHER = {"grant": "grant_many", "revoke": "revoke_many"}


def _units(connector: Connector, items: Sequence[_Work], *,
           config: EngineConfig) -> list[Sequence[_Work]]:
    """The calls to make: one per operation, except grants (revocations) of one entitlement
    that the connector can make together (``grant_many``, ``revoke_many``)."""
    units: list[Sequence[_Work]] = []
    together: dict[tuple[str, str], list[_Work]] = {}
    for work in items:
        method = _TOGETHER.get(work.action)
        if (method is not None and config.grant_many_max >= 2 and work.ref is not None
                and work.entitlement is not None
                and callable(getattr(connector, method, None))):
            together.setdefault((work.action, work.entitlement), []).append(work)
        else:
            units.append([work])
    for group in together.values():
        if len(group) == 1:
            units.append(group)
        else:
            units.extend(_chunks(group, config.grant_many_max))
    return units


def _call_unit(connector: Connector, unit: Sequence[_Work], *, limiter: RateLimiter) -> None:
    """Make one call (one operation, or several grants or revocations of one entitlement
    together) and set the outcomes.

    Together: ``grant_many(pairs)`` / ``revoke_many(pairs)`` with ``(ref, entitlement)``
    pairs either returns None (all done) or one result per pair, in order, each with an
    ``error`` (None: done), or raises for the whole call. A transient failure of the whole
    call is every operation's failure (the target is not there: calling it once per
    operation would not help); any other failure of the whole call sends the operations
    again one by one (grants and revocations are idempotent), so each gets its own outcome.
    """
    if len(unit) == 1:
        unit[0].outcome = _call(connector, unit[0], limiter=limiter)
        return
    target = unit[0].target
    method = _TOGETHER[unit[0].action]
    try:
        limiter.acquire(target.application_id, target.rate_limit_per_second)
        results = getattr(connector, method)([(w.ref, w.entitlement) for w in unit])
        errors = _item_errors(results, len(unit))
    except ConnectorError as error:
        if error.transient:
            for work in unit:
                work.outcome = _Outcome(error=error)
            return
        log.info("%s to %s failed (%s): one by one", method, unit[0].entitlement,
                 error.category)
    except Exception as error:
        log.warning("%s to %s: unexpected %s; one by one", method, unit[0].entitlement,
                    type(error).__name__)
    else:
        for work, item_error in zip(unit, errors, strict=True):
            work.outcome = _Outcome(error=item_error)
        return
    for work in unit:
        work.outcome = _call(connector, work, limiter=limiter)


def _item_errors(results: Any, count: int) -> list[ConnectorError | None]:
    """Each item's error from what a ``*_many`` call returned (see :func:`_call_unit`)."""
    if results is None:
        return [None] * count
    items = list(results)
    if len(items) != count:
        raise TypeError(f"{len(items)} results for {count} items")
    errors: list[ConnectorError | None] = []
    for item in items:
        error = getattr(item, "error", None)
        if error is not None and not isinstance(error, ConnectorError):
            raise TypeError(f"an item's error is a {type(error).__name__}")
        errors.append(error)
    return errors


def _unexpected(error: Exception, target: Target) -> ConnectorError:
    log.warning("unexpected %s from the %s connector of %s", type(error).__name__,
                target.kind, target.name)
    return TargetUnavailable(f"unexpected {type(error).__name__} from the {target.kind} "
                             "connector")


def _call(connector: Connector, work: _Work, *, limiter: RateLimiter) -> _Outcome:
    """Call the target for one operation; every failure becomes a ConnectorError."""
    try:
        limiter.acquire(work.target.application_id, work.target.rate_limit_per_second)
        return _Outcome(result=_dispatch(connector, work))
    except ConnectorError as error:
        return _Outcome(error=error)
    except Exception as error:
        log.warning("operation %s failed unexpectedly", work.operation_id)
        return _Outcome(error=_unexpected(error, work.target))


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


def _finish_batch(session_factory: sessionmaker[Session], works: Sequence[_Work], *,
                  worker_id: str, actor: Actor, clock: Clock, config: EngineConfig,
                  rng: random.Random) -> dict[uuid.UUID, str]:
    """Record the batch's outcomes in one transaction. When that fails, each operation's
    outcome is recorded in a transaction of its own, so that one operation's problem does
    not hold back the others (its own stays running until its lease ends, as when a worker
    dies); the first error is raised afterwards."""
    try:
        with unit_of_work(session_factory) as session:
            return _record_outcomes(session, works, worker_id=worker_id, actor=actor,
                                    clock=clock, config=config, rng=rng)
    except Exception:
        if len(works) == 1:
            raise
        log.warning("recording %d outcomes together failed; one by one", len(works),
                    exc_info=True)
    states: dict[uuid.UUID, str] = {}
    first: Exception | None = None
    for work in works:
        try:
            with unit_of_work(session_factory) as session:
                states.update(_record_outcomes(session, [work], worker_id=worker_id,
                                               actor=actor, clock=clock, config=config,
                                               rng=rng))
        except Exception as error:
            log.exception("operation %s: its outcome could not be recorded; it runs again "
                          "when its lease ends", work.operation_id)
            states[work.operation_id] = "running"
            first = first or error
    if first is not None:
        raise first
    return states


def _record_outcomes(session: Session, works: Sequence[_Work], *, worker_id: str,
                     actor: Actor, clock: Clock, config: EngineConfig,
                     rng: random.Random) -> dict[uuid.UUID, str]:
    ids = [w.operation_id for w in works]
    ops: dict[uuid.UUID, ProvisioningOperation] = {}
    for chunk in _chunks(ids, _IN_MAX):
        ops.update((op.id, op) for op in session.scalars(
            select(ProvisioningOperation)
            .where(ProvisioningOperation.id.in_(chunk))
            .order_by(ProvisioningOperation.id)
            .with_for_update()
            .execution_options(populate_existing=True)))
    # The breaker is written only when it changes: after a failure, or by a success while
    # it is not closed and clean.
    rows = health.breakers(session, {w.target.application_id for w in works})
    dirty = {app_id for app_id, row in rows.items()
             if row.state != "closed" or (row.consecutive_failures or 0) > 0}
    created = _Created.load(session, works)
    done: list[ProvisioningOperation] = []
    states: dict[uuid.UUID, str] = {}
    for work in works:
        op = ops[work.operation_id]
        states[op.id] = _finish(session, op, work, dirty, created, done, worker_id=worker_id,
                                actor=actor, clock=clock, config=config, rng=rng)
    session.flush()
    # Request lines follow their operations (service.complete_operation's hooks), once
    # per line, after every outcome of the batch is in.
    lines: dict[uuid.UUID, ProvisioningOperation] = {}
    for op in done:
        if op.request_line_id is not None:
            lines.setdefault(op.request_line_id, op)
    for op in lines.values():
        service.after_done(session, op, actor=actor, clock=clock)
    return states


def _complete(session: Session, op: ProvisioningOperation, done: list[ProvisioningOperation],
              *, succeeded: bool, error: str | None, actor: Actor, clock: Clock,
              error_category: str | None = None,
              resolution_group_id: uuid.UUID | None = None) -> None:
    """:func:`idgov.provisioning.service.complete_operation` for a running operation of the
    batch (loaded and locked already): the same fields and audit event, without a read and
    a flush of its own; the line hooks run once the batch is recorded."""
    service.mark_complete(session, op, succeeded=succeeded, error=error,
                          error_category=error_category,
                          resolution_group_id=resolution_group_id, actor=actor, clock=clock)
    done.append(op)


@dataclass
class _Created:
    """For the batch's successful account creations: their identities, and the accounts
    already known with their native ids or as their identities' primary accounts."""

    applications: dict[uuid.UUID, Application]
    identities: dict[uuid.UUID, Identity]
    by_native: dict[tuple[uuid.UUID, str], Account]
    primary: dict[tuple[uuid.UUID, uuid.UUID], Account]

    @classmethod
    def load(cls, session: Session, works: Sequence[_Work]) -> _Created:
        made = [w for w in works if w.action == "create_account" and w.outcome is not None
                and isinstance(w.outcome.result, AccountRef)]
        found = cls({}, {}, {}, {})
        if not made:
            return found
        apps = sorted({w.target.application_id for w in made}, key=str)
        found.applications.update((a.id, a) for a in session.scalars(
            select(Application).where(Application.id.in_(apps))))
        for chunk in _chunks(made, _IN_MAX):
            op_ids = [w.operation_id for w in chunk]
            identity_ids = select(ProvisioningOperation.identity_id).where(
                ProvisioningOperation.id.in_(op_ids))
            found.identities.update((i.id, i) for i in session.scalars(
                select(Identity).where(Identity.id.in_(identity_ids))))
            natives = [w.outcome.result.native_id for w in chunk if w.outcome is not None]
            for account in session.scalars(select(Account).where(
                    Account.application_id.in_(apps),
                    (Account.native_id.in_(natives)) | (
                        Account.identity_id.in_(identity_ids)
                        & (Account.account_type == "primary")))):
                found.by_native[(account.application_id, account.native_id)] = account
                if account.identity_id is not None and account.account_type == "primary":
                    found.primary[(account.identity_id, account.application_id)] = account
        return found


def _finish(session: Session, op: ProvisioningOperation, work: _Work, dirty: set[uuid.UUID],
            created: _Created, done: list[ProvisioningOperation], *, worker_id: str,
            actor: Actor, clock: Clock, config: EngineConfig, rng: random.Random) -> str:
    if (op.state != "running" or op.claimed_by != worker_id or op.attempts != work.attempt):
        log.info("operation %s: claim lost to %s; outcome dropped", op.id, op.claimed_by)
        return op.state
    outcome = work.outcome or _Outcome(error=TargetUnavailable("not called"), called=False)
    app_id = work.target.application_id
    error = outcome.error
    context: dict[str, Any] = {"attempt": op.attempts, "worker": worker_id}

    def answered() -> None:
        if outcome.called and app_id in dirty:
            health.record_answer(session, application_id=app_id, actor=actor, clock=clock)
            dirty.discard(app_id)

    if error is None:
        answered()
        _on_success(session, op, work, outcome, created, actor=actor, clock=clock)
        context["outcome"] = "succeeded"
        if work.nothing_to_do:
            context["note"] = work.nothing_to_do
        record(session, actor=actor, action="provisioning.attempt",
               object_type="provisioning_operation", object_id=op.id, clock=clock,
               context=context)
        _complete(session, op, done, succeeded=True, error=None, actor=actor, clock=clock)
        return "succeeded"
    context.update(error_category=error.category, error=str(error)[:2000])
    if error.transient:
        target_down = health.record_failure(
            session, application_id=app_id, error=error, threshold=config.breaker_threshold,
            cooldown=timedelta(seconds=config.breaker_cooldown_seconds), actor=actor,
            clock=clock)
        dirty.add(app_id)
        charged = int((op.detail or {}).get("transient_failures", 0)) + (0 if target_down else 1)
        if charged < config.max_attempts:
            return _schedule_retry(session, op, error, charged=charged, target_down=target_down,
                                   context=context, actor=actor, clock=clock, config=config,
                                   rng=rng)
        context["reason"] = f"{charged} transient failure(s): giving up"
    else:
        answered()
    context["outcome"] = "failed"
    record(session, actor=actor, action="provisioning.attempt",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           context=context)
    _complete(session, op, done, succeeded=False, error=str(error),
              error_category=error.category,
              resolution_group_id=work.target.resolution_group_id, actor=actor, clock=clock)
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


def _on_success(session: Session, op: ProvisioningOperation, work: _Work, outcome: _Outcome,
                created: _Created, *, actor: Actor, clock: Clock) -> None:
    if op.action == "create_account" and isinstance(outcome.result, AccountRef):
        _account_created(session, op, outcome.result, work, created, actor=actor,
                         clock=clock)
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


def _account_created(session: Session, op: ProvisioningOperation, ref: AccountRef,
                     work: _Work, created: _Created, *, actor: Actor, clock: Clock) -> None:
    """Record the account a creation made. The usual case, a new account (no account of
    the identity there, none with that native id), is :func:`accounts.record_account_created`
    from the rows the batch read already; anything else goes through it."""
    app_id = op.application_id
    identity = created.identities.get(op.identity_id)
    application = created.applications.get(app_id)
    if (identity is None or application is None or (app_id, ref.native_id) in created.by_native
            or (op.identity_id, app_id) in created.primary):
        account = accounts.record_account_created(session, operation=op, ref=ref, actor=actor,
                                                  clock=clock)
    else:
        account = accounts.add_primary_account(session, operation=op, application=application,
                                               identity=identity, ref=ref, actor=actor,
                                               clock=clock)
    created.by_native[(app_id, account.native_id)] = account
    created.primary[(op.identity_id, app_id)] = account


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
        states = execute_batch(session_factory, operation_ids=ids, worker_id=worker_id,
                               settings=settings, clock=clock, connectors=connectors, rng=rng,
                               limiter=limiter, config=config)
        for operation_id in ids:
            stats.count(states[operation_id])
            if on_executed is not None:
                on_executed(operation_id, states[operation_id])
    return stats
