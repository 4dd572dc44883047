"""Lifecycle events: a prehire becoming active, a termination taking effect, a leaver's
accounts deleted after the retention period.

What must happen later is a :class:`LifecycleEvent` row written in the transaction that
decided it (:func:`schedule`); :func:`process_due` runs the events whose time has come,
oldest first, each in a savepoint of the caller's transaction, and marks them done. An
identity has at most one scheduled event of each kind: scheduling again replaces it.

A termination (:func:`terminate`) takes access away at once, in this order, so that the
person loses access before anything else runs on the targets:

1. the identity becomes ``terminated`` (audited ``identity.terminate``);
2. operations that would still give access (an account creation, an enable, a grant, a
   day-one delivery not run yet, or failed and waiting for a retry) are cancelled;
3. one ``disable_account`` operation per live account (cause ``lifecycle``), recorded
   before the revokes so that their ordinals put them first on each target;
4. every assignment in force or still to start is ended through
   :func:`idgov.assignments.service.revoke` (revoke operations; grants of an assignment
   that never started are cancelled there);
5. the leaver's open review flags are closed; what they owned and the approvals waiting on
   them pass to their manager (:mod:`idgov.lifecycle.handover`);
6. the identity's other scheduled events are cancelled and ``delete_accounts`` is
   scheduled at now + retention.

A rehire (:func:`reinstate`) cancels the deletion and re-enables the accounts that were
disabled and not deleted.

Audit: ``lifecycle_event.schedule`` / ``.cancel`` / ``.run`` (object ``lifecycle_event``),
``identity.activate`` / ``.terminate`` / ``.reinstate`` (object ``identity``), beside the
events of the assignments, operations and handover they cause.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.assignments import repository as assignment_repository
from idgov.assignments import service as assignments
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.db.repository import get_or_404
from idgov.errors import Conflict, DomainError, FieldError, InvalidInput
from idgov.lifecycle.handover import hand_over
from idgov.models.application import Account
from idgov.models.assignment import Assignment
from idgov.models.hr import LIFECYCLE_EVENT_KINDS, HrSource, LifecycleEvent, ReviewFlag
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import accounts
from idgov.provisioning.service import CANCELLABLE_STATES, cancel_operation
from idgov.types import Actor

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30
LIFECYCLE_ACTOR = Actor.system("lifecycle")
# Operations that would still give a leaver access; those not run yet
# (CANCELLABLE_STATES) are cancelled, a running one is left to finish (the disable comes
# after it).
_GIVING_ACCESS = ("create_account", "enable_account", "grant", "deliver_access")


# --- scheduling ------------------------------------------------------------------------------


def _scheduled(session: Session, identity_id: uuid.UUID,
               kinds: Collection[str]) -> list[LifecycleEvent]:
    return list(session.scalars(
        select(LifecycleEvent)
        .where(LifecycleEvent.identity_id == identity_id, LifecycleEvent.state == "scheduled",
               LifecycleEvent.kind.in_(list(kinds)))
        .order_by(LifecycleEvent.due_at, LifecycleEvent.id)))


def _cancel(session: Session, event: LifecycleEvent, *, reason: str, actor: Actor,
            clock: Clock) -> None:
    before = snapshot(event)
    event.state = "cancelled"
    event.done_at = clock.now()
    event.detail = {**(event.detail or {}), "cancel_reason": reason[:2000]}
    session.flush()
    record(session, actor=actor, action="lifecycle_event.cancel", object_type="lifecycle_event",
           object_id=event.id, clock=clock, before=before, after=snapshot(event),
           context={"reason": reason})


def schedule(session: Session, *, identity_id: uuid.UUID, kind: str, due_at: datetime,
             reason: str, clock: Clock, run_id: uuid.UUID | None = None,
             change_id: uuid.UUID | None = None, detail: dict[str, Any] | None = None,
             actor: Actor | None = None) -> LifecycleEvent:
    """Schedule ``kind`` for the identity at ``due_at``, replacing (cancelling) its other
    scheduled event of that kind. Scheduling what is already scheduled for the same instant
    changes nothing and returns the existing event (a feed read twice schedules once).

    Raises InvalidInput for an unknown kind or a naive ``due_at``, NotFound for an unknown
    identity.
    """
    actor = actor or LIFECYCLE_ACTOR
    if kind not in LIFECYCLE_EVENT_KINDS:
        kinds = ", ".join(LIFECYCLE_EVENT_KINDS)
        raise InvalidInput(f"unknown lifecycle event kind {kind!r}",
                           errors=[FieldError("kind", f"must be one of {kinds}")])
    if due_at.tzinfo is None:
        raise InvalidInput("due_at needs a time zone",
                           errors=[FieldError("due_at", "must be timezone-aware")])
    get_or_404(session, Identity, identity_id, what="identity")
    for existing in _scheduled(session, identity_id, (kind,)):
        if existing.due_at == due_at:
            return existing
        _cancel(session, existing, reason=f"replaced by a {kind} due {due_at.isoformat()}",
                actor=actor, clock=clock)
    event = LifecycleEvent(identity_id=identity_id, kind=kind, due_at=due_at,
                           state="scheduled", run_id=run_id, change_id=change_id,
                           reason=reason[:2000] if reason else None, detail=dict(detail or {}),
                           created_at=clock.now())
    session.add(event)
    session.flush()
    record(session, actor=actor, action="lifecycle_event.schedule",
           object_type="lifecycle_event", object_id=event.id, clock=clock,
           after=snapshot(event))
    return event


def cancel_scheduled(session: Session, *, identity_id: uuid.UUID, kinds: Collection[str],
                     reason: str, actor: Actor, clock: Clock) -> int:
    """Cancel the identity's scheduled events of ``kinds``; how many were cancelled."""
    found = _scheduled(session, identity_id, kinds)
    for event in found:
        _cancel(session, event, reason=reason, actor=actor, clock=clock)
    return len(found)


# --- the transitions -------------------------------------------------------------------------


def _set_state(session: Session, identity: Identity, state: str, *, action: str, actor: Actor,
               clock: Clock, context: dict[str, Any]) -> None:
    before = snapshot(identity)
    identity.lifecycle_state = state
    identity.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action=action, object_type="identity", object_id=identity.id,
           clock=clock, before=before, after=snapshot(identity), context=context)


def _accounts_of(session: Session, identity_id: uuid.UUID,
                 statuses: Collection[str]) -> list[Account]:
    return list(session.scalars(
        select(Account).where(Account.identity_id == identity_id,
                              Account.status.in_(list(statuses)))
        .order_by(Account.application_id, Account.id)))


def _enable_disabled(session: Session, identity: Identity, *, cause_id: str, actor: Actor,
                     clock: Clock) -> list[ProvisioningOperation]:
    """An enable_account operation per disabled (not deleted) account of the identity, and
    per live account a disable of which is running now (it will be disabled first)."""
    running = set(session.scalars(
        select(ProvisioningOperation.account_id).where(
            ProvisioningOperation.identity_id == identity.id,
            ProvisioningOperation.action == "disable_account",
            ProvisioningOperation.state == "running")))
    made = []
    for account in _accounts_of(session, identity.id, ("active", "disabled")):
        if account.status == "disabled" or account.id in running:
            op = accounts.record_account_action(
                session, account=account, action="enable_account", cause="lifecycle",
                cause_id=cause_id, actor=actor, clock=clock)
            if op is not None:
                made.append(op)
    return made


def activate(session: Session, *, identity_id: uuid.UUID, actor: Actor,
             clock: Clock) -> Identity:
    """A prehire starts: ``prehire`` -> ``active``; accounts left disabled (a rehire before
    the start date) are enabled, and a scheduled activation is no longer needed.

    An identity already active is returned unchanged. Conflict for a terminated or
    suspended identity.
    """
    identity = get_or_404(session, Identity, identity_id, what="identity")
    if identity.lifecycle_state == "active":
        return identity
    if identity.lifecycle_state != "prehire":
        raise Conflict(f"identity {identity.employee_id} is {identity.lifecycle_state}; only "
                       "a prehire is activated", state=identity.lifecycle_state)
    _set_state(session, identity, "active", action="identity.activate", actor=actor,
               clock=clock, context={})
    _enable_disabled(session, identity, cause_id=str(uuid.uuid4()), actor=actor, clock=clock)
    cancel_scheduled(session, identity_id=identity_id, kinds=("activate",),
                     reason="the identity was activated", actor=actor, clock=clock)
    return identity


def _cancel_giving_access(session: Session, identity_id: uuid.UUID, *, actor: Actor,
                          clock: Clock) -> int:
    ops = list(session.scalars(
        select(ProvisioningOperation).where(
            ProvisioningOperation.identity_id == identity_id,
            ProvisioningOperation.action.in_(_GIVING_ACCESS),
            ProvisioningOperation.state.in_(CANCELLABLE_STATES))
        .order_by(ProvisioningOperation.ordinal, ProvisioningOperation.id)))
    for op in ops:
        cancel_operation(session, operation_id=op.id, reason="the identity was terminated",
                         actor=actor, clock=clock)
    return len(ops)


def _close_own_flags(session: Session, identity_id: uuid.UUID, *, actor: Actor,
                     clock: Clock) -> None:
    flags = session.scalars(select(ReviewFlag).where(ReviewFlag.identity_id == identity_id,
                                                     ReviewFlag.state == "open")
                            .order_by(ReviewFlag.created_at, ReviewFlag.id))
    for flag in flags:
        before = snapshot(flag)
        flag.state = "closed"
        flag.closed_at = clock.now()
        flag.closed_by = actor.label[:400]
        session.flush()
        record(session, actor=actor, action="review_flag.close", object_type="review_flag",
               object_id=flag.id, clock=clock, before=before, after=snapshot(flag),
               context={"reason": "the identity was terminated"})


def terminate(session: Session, *, identity_id: uuid.UUID, reason: str, retention: timedelta,
              actor: Actor, clock: Clock, run_id: uuid.UUID | None = None,
              change_id: uuid.UUID | None = None) -> Identity:
    """Take everything away from a leaver now (see the module docstring for the order).

    An identity already terminated is returned unchanged. Raises NotFound for an unknown
    identity, InvalidInput without a reason.
    """
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required",
                           errors=[FieldError("reason", "a reason is required")])
    reason = reason.strip()
    identity = get_or_404(session, Identity, identity_id, what="identity")
    if identity.lifecycle_state == "terminated":
        return identity
    now = clock.now()
    termination_id = str(uuid.uuid4())
    context: dict[str, Any] = {"reason": reason, "termination_id": termination_id,
                               "run_id": run_id, "change_id": change_id,
                               "retention_days": retention / timedelta(days=1)}
    _set_state(session, identity, "terminated", action="identity.terminate", actor=actor,
               clock=clock, context=context)
    cancelled = _cancel_giving_access(session, identity_id, actor=actor, clock=clock)
    disabled = 0
    for account in _accounts_of(session, identity_id, ("active",)):
        disabled += accounts.record_account_action(
            session, account=account, action="disable_account", cause="lifecycle",
            cause_id=termination_id, actor=actor, clock=clock,
            detail={"reason": reason[:500]}) is not None
    ending = list(session.scalars(
        select(Assignment).where(Assignment.identity_id == identity_id,
                                 assignment_repository.not_ended(now))
        .order_by(Assignment.valid_from, Assignment.id)))
    for assignment in ending:
        assignments.revoke(session, assignment_id=assignment.id,
                           reason=f"leaver: {reason}", actor=actor, clock=clock)
    _close_own_flags(session, identity_id, actor=actor, clock=clock)
    handover = hand_over(session, identity_id=identity_id, actor=actor, clock=clock)
    cancel_scheduled(session, identity_id=identity_id, kinds=LIFECYCLE_EVENT_KINDS,
                     reason="the identity was terminated", actor=actor, clock=clock)
    schedule(session, identity_id=identity_id, kind="delete_accounts", due_at=now + retention,
             reason=f"accounts of a leaver, kept {retention.days} day(s)", clock=clock,
             run_id=run_id, change_id=change_id, detail={"termination_id": termination_id},
             actor=actor)
    log.info("terminated identity %s: %d operation(s) cancelled, %d account(s) to disable, "
             "%d assignment(s) ended, successor %s", identity_id, cancelled, disabled,
             len(ending), handover.successor_id)
    return identity


def reinstate(session: Session, *, identity_id: uuid.UUID, actor: Actor, clock: Clock,
              prehire: bool) -> Identity:
    """A rehire: ``terminated`` -> ``active`` (or ``prehire`` until the new start date),
    the scheduled deletion of the accounts cancelled, disable and delete operations not run
    yet cancelled, and ``enable_account`` operations for the accounts disabled and not
    deleted (for a prehire, :func:`activate` enables them at the start). Access itself comes
    back through birthright rules and requests, not from the old assignments.

    Conflict unless the identity is terminated.
    """
    identity = get_or_404(session, Identity, identity_id, what="identity")
    if identity.lifecycle_state != "terminated":
        raise Conflict(f"identity {identity.employee_id} is {identity.lifecycle_state}, not "
                       "terminated", state=identity.lifecycle_state)
    state = "prehire" if prehire else "active"
    _set_state(session, identity, state, action="identity.reinstate", actor=actor, clock=clock,
               context={"prehire": prehire})
    cancel_scheduled(session, identity_id=identity_id, kinds=("delete_accounts", "terminate"),
                     reason="the identity was rehired", actor=actor, clock=clock)
    taking = list(session.scalars(
        select(ProvisioningOperation).where(
            ProvisioningOperation.identity_id == identity_id,
            ProvisioningOperation.action.in_(("disable_account", "delete_account")),
            ProvisioningOperation.cause == "lifecycle",
            ProvisioningOperation.state.in_(CANCELLABLE_STATES))
        .order_by(ProvisioningOperation.ordinal, ProvisioningOperation.id)))
    for op in taking:
        cancel_operation(session, operation_id=op.id, reason="the identity was rehired",
                         actor=actor, clock=clock)
    if not prehire:
        _enable_disabled(session, identity, cause_id=str(uuid.uuid4()), actor=actor,
                         clock=clock)
    return identity


# --- running what is due ---------------------------------------------------------------------


def retention_of(session: Session, identity: Identity) -> timedelta:
    """How long a leaver's accounts are kept: their HR source's retention, else 30 days."""
    source = session.get(HrSource, identity.hr_source_id) if identity.hr_source_id else None
    days = source.account_retention_days if source is not None else DEFAULT_RETENTION_DAYS
    return timedelta(days=days)


def _delete_accounts(session: Session, event: LifecycleEvent, identity: Identity, *,
                     actor: Actor, clock: Clock) -> str:
    if identity.lifecycle_state != "terminated":
        return f"skipped: the identity is {identity.lifecycle_state}"
    made = 0
    for account in _accounts_of(session, identity.id, ("active", "disabled")):
        made += accounts.record_account_action(
            session, account=account, action="delete_account", cause="lifecycle",
            cause_id=str(event.id), actor=actor, clock=clock,
            detail={"reason": "retention period of a leaver ended"}) is not None
    return f"{made} account deletion(s) recorded"


def _apply(session: Session, event: LifecycleEvent, *, actor: Actor, clock: Clock) -> str:
    """Carry out one due event (already marked done); what it did, in words."""
    identity = get_or_404(session, Identity, event.identity_id, what="identity")
    if event.kind == "activate":
        if identity.lifecycle_state != "prehire":
            return f"skipped: the identity is {identity.lifecycle_state}"
        activate(session, identity_id=identity.id, actor=actor, clock=clock)
        return "activated"
    if event.kind == "terminate":
        if identity.lifecycle_state == "terminated":
            return "skipped: already terminated"
        terminate(session, identity_id=identity.id,
                  reason=(event.reason or "").strip() or "the termination took effect",
                  retention=retention_of(session, identity), actor=actor, clock=clock,
                  run_id=event.run_id, change_id=event.change_id)
        return "terminated"
    return _delete_accounts(session, event, identity, actor=actor, clock=clock)


def _due(session: Session, now: datetime, limit: int) -> list[LifecycleEvent]:
    return list(session.scalars(
        select(LifecycleEvent)
        .where(LifecycleEvent.state == "scheduled", LifecycleEvent.due_at <= now)
        .order_by(LifecycleEvent.due_at, LifecycleEvent.created_at, LifecycleEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)))


def process_due(session: Session, *, actor: Actor, clock: Clock, limit: int = 500) -> int:
    """Run the scheduled events due now, oldest first (at most ``limit``); how many ran.

    Each event is marked done (``done_at``, ``detail.outcome``) and audited
    ``lifecycle_event.run`` in a savepoint together with what it did. An event that raises a
    domain error is rolled back alone and stays scheduled, with ``detail.attempts`` and
    ``detail.last_error``. A done or cancelled event is never run again; a termination of an
    identity already terminated and an activation of one no longer a prehire are done
    without doing anything. On PostgreSQL the events are locked ``FOR UPDATE SKIP LOCKED``,
    so concurrent workers share them without running one twice.
    """
    ran = 0
    for event in _due(session, clock.now(), limit):
        event_id = event.id
        try:
            with session.begin_nested():
                before = snapshot(event)
                # Done first: a termination cancels the identity's other scheduled events.
                event.state = "done"
                event.done_at = clock.now()
                session.flush()
                outcome = _apply(session, event, actor=actor, clock=clock)
                event.detail = {**(event.detail or {}), "outcome": outcome}
                session.flush()
                record(session, actor=actor, action="lifecycle_event.run",
                       object_type="lifecycle_event", object_id=event.id, clock=clock,
                       before=before, after=snapshot(event), context={"outcome": outcome})
            ran += 1
        except DomainError as error:
            failed = session.get(LifecycleEvent, event_id)
            assert failed is not None
            attempts = int((failed.detail or {}).get("attempts", 0)) + 1
            failed.detail = {**(failed.detail or {}), "attempts": attempts,
                             "last_error": str(error)[:500]}
            session.flush()
            log.warning("lifecycle event %s (%s) failed: %s", event_id, failed.kind,
                        type(error).__name__)
    return ran


def scheduled_for(session: Session, *, identity_id: uuid.UUID,
                  kinds: Collection[str] | None = None) -> list[LifecycleEvent]:
    """The identity's scheduled events (of ``kinds``), soonest first."""
    return _scheduled(session, identity_id, kinds or LIFECYCLE_EVENT_KINDS)

