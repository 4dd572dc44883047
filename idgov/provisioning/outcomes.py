"""Recording what a batch's calls did: succeeded, retried later (backoff with full jitter,
Retry-After honoured), or failed and routed to the resolution group; every attempt audited;
accounts a creation made; manual applications' tasks."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import AccountRef
from connectors.errors import ConnectorError, TargetUnavailable
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.dayone.service import complete_delivery
from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.identity import GroupMember, Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.notifications.service import notify
from idgov.provisioning import accounts, health, service
from idgov.provisioning.connections import Target
from idgov.provisioning.engine_base import IN_MAX, EngineConfig, Outcome, Work, chunks
from idgov.types import Actor

log = logging.getLogger(__name__)

_ACCOUNT_STATUS = {"enable_account": "active", "disable_account": "disabled",
                   "delete_account": "deleted"}


def finish_batch(session_factory: sessionmaker[Session], works: Sequence[Work], *,
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


def _record_outcomes(session: Session, works: Sequence[Work], *, worker_id: str,
                     actor: Actor, clock: Clock, config: EngineConfig,
                     rng: random.Random) -> dict[uuid.UUID, str]:
    ids = [w.operation_id for w in works]
    ops: dict[uuid.UUID, ProvisioningOperation] = {}
    for chunk in chunks(ids, IN_MAX):
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
    def load(cls, session: Session, works: Sequence[Work]) -> _Created:
        made = [w for w in works if w.action == "create_account" and w.outcome is not None
                and isinstance(w.outcome.result, AccountRef)]
        found = cls({}, {}, {}, {})
        if not made:
            return found
        apps = sorted({w.target.application_id for w in made}, key=str)
        found.applications.update((a.id, a) for a in session.scalars(
            select(Application).where(Application.id.in_(apps))))
        for chunk in chunks(made, IN_MAX):
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


def _finish(session: Session, op: ProvisioningOperation, work: Work, dirty: set[uuid.UUID],
            created: _Created, done: list[ProvisioningOperation], *, worker_id: str,
            actor: Actor, clock: Clock, config: EngineConfig, rng: random.Random) -> str:
    if (op.state != "running" or op.claimed_by != worker_id or op.attempts != work.attempt):
        log.info("operation %s: claim lost to %s; outcome dropped", op.id, op.claimed_by)
        return op.state
    outcome = work.outcome or Outcome(error=TargetUnavailable("not called"), called=False)
    app_id = work.target.application_id
    error = outcome.error
    context: dict[str, Any] = {"attempt": op.attempts, "worker": worker_id}

    def answered() -> None:
        if outcome.called and app_id in dirty:
            health.record_answer(session, application_id=app_id, actor=actor, clock=clock)
            dirty.discard(app_id)

    if error is None and op.action == "deliver_access":
        # The core's part: the one-time link and the manager's message (or why not).
        error = complete_delivery(session, op, outcome.result, actor=actor, clock=clock)
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


def _on_success(session: Session, op: ProvisioningOperation, work: Work, outcome: Outcome,
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
                     work: Work, created: _Created, *, actor: Actor, clock: Clock) -> None:
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


def open_task(session: Session, op: ProvisioningOperation, *, actor: Actor,
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
