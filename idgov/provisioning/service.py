"""Provisioning intent: one operation per change of an identity's effective entitlements.

Whenever the desired state changes (an assignment granted, revoked or expired, a role's
composition changed) the entitlements each identity gains or loses are computed against the
composition valid now and recorded as ``pending`` operations, in the same transaction as the
change. An entitlement still held through another assignment or another path gives no
operation. Each operation has a deterministic idempotency key (cause, cause id, identity,
entitlement, action), so recording the same cause twice never yields a second operation.
Execution is :mod:`idgov.provisioning.engine`; :func:`complete_operation` is its way back
in (and the fulfilment tasks' way back in). Each operation gets an increasing ``ordinal``
(:mod:`idgov.provisioning.ordering`): the engine runs an identity's operations on one
application in that order, and a grant is recorded after the account operation it needs.
A grant starting later is not due before ``next_attempt_at`` (its ``detail.not_before``).

The failed queue: an administrator retries, cancels or resolves (by hand, with a note) an
operation that failed.

Audit: one ``provisioning.record`` event per operation (object ``provisioning_operation``):
each operation is an object with a life of its own (recorded, then completed or cancelled),
so its whole history is found by its id, like any other object's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict
from idgov.models.assignment import Assignment
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import accounts, repository
from idgov.provisioning.ordering import next_ordinal
from idgov.provisioning.schemas import FailedFilter, OperationFilter
from idgov.types import Actor

Change = Literal["grant", "revoke", "expiry"]
LineHook = Callable[[Session, uuid.UUID, Actor, Clock], None]

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "rolled_back"})
_LINE_HOOKS: list[LineHook] = []


def register_line_hook(fn: LineHook) -> None:
    """Call ``fn(session, line_id, actor, clock)`` when every operation of a request line is
    done (succeeded, failed or cancelled). Registering the same function twice is a no-op."""
    if fn not in _LINE_HOOKS:
        _LINE_HOOKS.append(fn)


def idempotency_key(*, cause: str, cause_id: str, identity_id: uuid.UUID,
                    entitlement_id: uuid.UUID, action: str) -> str:
    """The same cause, identity, entitlement and action always give the same key."""
    return f"{cause}:{cause_id}:{identity_id}:{entitlement_id}:{action}"


@dataclass(frozen=True)
class _Planned:
    identity_id: uuid.UUID
    entitlement_id: uuid.UUID
    action: Literal["grant", "revoke"]


def _record_operations(session: Session, planned: Iterable[_Planned], *, cause: str,
                       cause_id: str, assignment_id: uuid.UUID | None,
                       request_line_id: uuid.UUID | None, detail: dict[str, Any],
                       actor: Actor, clock: Clock,
                       applications: Mapping[uuid.UUID, uuid.UUID] | None = None,
                       ) -> list[ProvisioningOperation]:
    """Add one pending operation per planned change whose key is not taken yet, audited."""
    wanted = sorted(set(planned), key=lambda p: (str(p.identity_id), str(p.entitlement_id),
                                                 p.action))
    if not wanted:
        return []
    keys = {p: idempotency_key(cause=cause, cause_id=cause_id, identity_id=p.identity_id,
                               entitlement_id=p.entitlement_id, action=p.action)
            for p in wanted}
    taken = repository.existing_keys(session, keys.values())
    fresh = [p for p in wanted if keys[p] not in taken]
    if not fresh:
        return []
    apps = applications or repository.applications_of(session,
                                                      (p.entitlement_id for p in fresh))
    # An identity granted something where it has no account gets a create_account
    # operation first (a lower ordinal, so it runs before the grants).
    for identity_id, application_id in sorted({(p.identity_id, apps[p.entitlement_id])
                                               for p in fresh if p.action == "grant"},
                                              key=str):
        accounts.ensure_account_operations(
            session, identity_id=identity_id, application_id=application_id, cause=cause,
            cause_id=cause_id, assignment_id=assignment_id, request_line_id=request_line_id,
            actor=actor, clock=clock)
    now = clock.now()
    not_before = detail.get("not_before")
    due_at = datetime.fromisoformat(not_before) if isinstance(not_before, str) else None
    made = [
        ProvisioningOperation(
            idempotency_key=keys[p], identity_id=p.identity_id,
            application_id=apps[p.entitlement_id], entitlement_id=p.entitlement_id,
            action=p.action, state="pending", cause=cause, cause_id=cause_id,
            assignment_id=assignment_id, request_line_id=request_line_id, attempts=0,
            ordinal=next_ordinal(), next_attempt_at=due_at, detail=dict(detail),
            created_at=now, updated_at=now)
        for p in fresh
    ]
    session.add_all(made)
    session.flush()
    for op in made:
        record(session, actor=actor, action="provisioning.record",
               object_type="provisioning_operation", object_id=op.id, clock=clock,
               after=snapshot(op))
    return made


def record_assignment_change(session: Session, *, assignment: Assignment, change: Change,
                             actor: Actor, clock: Clock,
                             request_line_id: uuid.UUID | None = None,
                             ) -> list[ProvisioningOperation]:
    """Record the operations one assignment change implies (call it after the change).

    grant: the entitlements the assignment gives that the identity's other assignments in
    force do not; revoke / expiry: those it gave that no other assignment in force still
    gives. Composition as valid now. A grant starting later carries ``detail.not_before``.
    Revoking an assignment that never started records nothing to revoke: the grant
    operations still pending for it are cancelled instead.
    """
    now = clock.now()
    cause = "expiry" if change == "expiry" else "assignment"
    if change != "grant" and assignment.valid_from > now:
        _cancel_pending_grants(session, assignment=assignment, actor=actor, clock=clock)
        return []
    rows = repository.assignment_entitlements(session, assignment=assignment, links_at=now,
                                              others_at=max(now, assignment.valid_from))
    action: Literal["grant", "revoke"] = "grant" if change == "grant" else "revoke"
    planned = [_Planned(assignment.identity_id, e, action) for e, _a, elsewhere in rows
               if not elsewhere]
    if not planned:
        return []
    detail: dict[str, Any] = {}
    if change == "grant" and assignment.valid_from > now:
        detail["not_before"] = assignment.valid_from.isoformat()
    return _record_operations(session, planned, cause=cause, cause_id=str(assignment.id),
                              assignment_id=assignment.id,
                              request_line_id=request_line_id or assignment.request_line_id,
                              detail=detail,
                              applications={e: a for e, a, _x in rows}, actor=actor,
                              clock=clock)


def _cancel_pending_grants(session: Session, *, assignment: Assignment, actor: Actor,
                           clock: Clock) -> None:
    for op in repository.pending_grants_of(session, assignment.id):
        before = snapshot(op)
        op.state = "cancelled"
        op.completed_at = clock.now()
        op.updated_at = clock.now()
        session.flush()
        record(session, actor=actor, action="provisioning.cancel",
               object_type="provisioning_operation", object_id=op.id, clock=clock,
               before=before, after=snapshot(op),
               context={"reason": "the assignment ended before it started"})


# --- catalog changes -------------------------------------------------------------------------


@dataclass
class HolderState:
    """Which of ``entitlement_ids`` each holder of ``role_id`` had before a composition change."""

    role_id: uuid.UUID
    entitlement_ids: frozenset[uuid.UUID]
    before: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogChangeResult:
    holders: int
    identities_changed: int
    gains: int
    losses: int
    operations: Sequence[ProvisioningOperation]

    def counts(self) -> dict[str, int]:
        """The impact counts, for the audit event of the composition change."""
        return {"holders": self.holders, "identities_changed": self.identities_changed,
                "gains": self.gains, "losses": self.losses,
                "operations": len(self.operations)}


def capture_holders(session: Session, *, role_id: uuid.UUID,
                    included_role_id: uuid.UUID | None = None,
                    entitlement_id: uuid.UUID | None = None, clock: Clock) -> HolderState:
    """Before changing a link of ``role_id``: what its holders have of what the link touches.

    The link touches ``entitlement_id`` (a role -> entitlement link), or everything
    ``included_role_id`` gives (an inclusion link).
    """
    now = clock.now()
    if entitlement_id is not None:
        touched = {entitlement_id}
    else:
        assert included_role_id is not None
        touched = repository.role_entitlements(session, role_id=included_role_id, at=now)
    state = HolderState(role_id=role_id, entitlement_ids=frozenset(touched))
    if touched:
        state.before = repository.holder_entitlements(session, role_id=role_id, at=now,
                                                      within=touched)
    return state


def record_catalog_change(session: Session, *, state: HolderState, link_id: uuid.UUID,
                          actor: Actor, clock: Clock) -> CatalogChangeResult:
    """After the link change (flushed): record each holder's gains and losses."""
    if not state.entitlement_ids or not state.before:
        return CatalogChangeResult(holders=len(state.before), identities_changed=0, gains=0,
                                   losses=0, operations=())
    after = repository.holder_entitlements(session, role_id=state.role_id, at=clock.now(),
                                           within=state.entitlement_ids)
    planned: list[_Planned] = []
    changed: set[uuid.UUID] = set()
    gains = losses = 0
    for identity_id in state.before.keys() | after.keys():
        had = state.before.get(identity_id, set())
        has = after.get(identity_id, set())
        for e in has - had:
            planned.append(_Planned(identity_id, e, "grant"))
            gains += 1
        for e in had - has:
            planned.append(_Planned(identity_id, e, "revoke"))
            losses += 1
        if had != has:
            changed.add(identity_id)
    ops = _record_operations(session, planned, cause="catalog_change", cause_id=str(link_id),
                             assignment_id=None, request_line_id=None,
                             detail={"role_id": str(state.role_id)}, actor=actor, clock=clock)
    return CatalogChangeResult(holders=len(state.before.keys() | after.keys()),
                               identities_changed=len(changed), gains=gains, losses=losses,
                               operations=ops)


# --- lines, completion, reading --------------------------------------------------------------


def operations_for_line(session: Session, *, line_id: uuid.UUID) -> list[ProvisioningOperation]:
    """The operations recorded for a request line, oldest first."""
    return repository.operations_of_line(session, line_id)


def complete_operation(session: Session, *, operation_id: uuid.UUID, succeeded: bool,
                       error: str | None, actor: Actor, clock: Clock,
                       error_category: str | None = None,
                       resolution_group_id: uuid.UUID | None = None,
                       context: dict[str, Any] | None = None) -> ProvisioningOperation:
    """Mark an open operation done; when it was the last open operation of its request line,
    call the registered line hooks. A failure carries its category and the resolution group
    it is routed to. An operation a worker claimed counted its attempt when claimed; one
    completed without a worker counts one now.

    Raises NotFound for an unknown id and Conflict when the operation is already done.
    """
    op = get_or_404(session, ProvisioningOperation, operation_id, what="provisioning operation")
    if op.state in TERMINAL_STATES:
        raise Conflict(f"provisioning operation {operation_id} is already {op.state}",
                       state=op.state)
    if op.state != "running":
        op.attempts = (op.attempts or 0) + 1
    mark_complete(session, op, succeeded=succeeded, error=error, error_category=error_category,
                  resolution_group_id=resolution_group_id, actor=actor, clock=clock,
                  context=context)
    session.flush()
    after_done(session, op, actor=actor, clock=clock)
    return op


def mark_complete(session: Session, op: ProvisioningOperation, *, succeeded: bool,
                  error: str | None, actor: Actor, clock: Clock,
                  error_category: str | None = None,
                  resolution_group_id: uuid.UUID | None = None,
                  context: dict[str, Any] | None = None) -> None:
    """Set ``op`` succeeded or failed now and audit it (``provisioning.complete``); no flush
    and no line hooks (the engine records a whole batch, then runs the hooks)."""
    before = snapshot(op)
    now = clock.now()
    op.state = "succeeded" if succeeded else "failed"
    op.last_error = None if succeeded else (error or "failed")[:2000]
    op.error_category = None if succeeded else error_category
    op.resolution_group_id = None if succeeded else resolution_group_id
    op.lease_until = None
    op.next_attempt_at = None
    op.completed_at = now
    op.updated_at = now
    record(session, actor=actor, action="provisioning.complete",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           before=before, after=snapshot(op), context=context)


def after_done(session: Session, op: ProvisioningOperation, *, actor: Actor,
                clock: Clock) -> None:
    """Call the line hooks when ``op`` was the last open operation of its request line."""
    line_id = op.request_line_id
    if line_id is not None and all(o.state in TERMINAL_STATES
                                   for o in repository.operations_of_line(session, line_id)):
        for hook in list(_LINE_HOOKS):
            hook(session, line_id, actor, clock)


# --- the failed queue ------------------------------------------------------------------------


def list_failed(session: Session, *, filters: FailedFilter,
                group_ids: Collection[uuid.UUID] | None = None) -> Page[ProvisioningOperation]:
    """Failed operations, in id order; ``group_ids`` restricts them
    to those routed to these resolution groups (a member's view)."""
    return paginate(session, repository.failed_query(filters, group_ids=group_ids),
                    ProvisioningOperation, limit=filters.limit, cursor=filters.cursor)


def groups_of(session: Session, identity_id: uuid.UUID) -> set[uuid.UUID]:
    """The groups an identity is a member of (its view of the failed queue)."""
    return repository.groups_of(session, identity_id)


def retry_operation(session: Session, *, operation_id: uuid.UUID, actor: Actor,
                    clock: Clock) -> ProvisioningOperation:
    """Put a failed operation back in the queue, due now, with a fresh count of retries.

    Conflict unless the operation is failed.
    """
    op = get_or_404(session, ProvisioningOperation, operation_id, what="provisioning operation")
    if op.state != "failed":
        raise Conflict(f"only a failed operation can be retried; this one is {op.state}",
                       state=op.state)
    before = snapshot(op)
    now = clock.now()
    op.state = "pending"
    op.next_attempt_at = None
    op.lease_until = None
    op.claimed_by = None
    op.completed_at = None
    op.error_category = None
    op.detail = {k: v for k, v in (op.detail or {}).items() if k != "transient_failures"}
    op.updated_at = now
    session.flush()
    record(session, actor=actor, action="provisioning.retry",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           before=before, after=snapshot(op))
    return op


# The states of an operation that has not reached its target: it can still be given up.
CANCELLABLE_STATES = ("pending", "retry_scheduled", "failed")


def cancel_operation(session: Session, *, operation_id: uuid.UUID, actor: Actor,
                     clock: Clock, reason: str = "cancelled by a person") -> ProvisioningOperation:
    """Give up an operation that is not running: it will not be sent. ``reason`` goes to
    the audit event's context.

    Conflict when it is running (a worker or a fulfilment task has it) or already done.
    """
    op = get_or_404(session, ProvisioningOperation, operation_id, what="provisioning operation")
    if op.state not in CANCELLABLE_STATES:
        raise Conflict(f"a {op.state} operation cannot be cancelled", state=op.state)
    before = snapshot(op)
    now = clock.now()
    op.state = "cancelled"
    op.next_attempt_at = None
    op.completed_at = now
    op.updated_at = now
    session.flush()
    record(session, actor=actor, action="provisioning.cancel",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           before=before, after=snapshot(op), context={"reason": reason})
    after_done(session, op, actor=actor, clock=clock)
    return op


def resolve_operation(session: Session, *, operation_id: uuid.UUID, note: str, actor: Actor,
                      clock: Clock) -> ProvisioningOperation:
    """A failed operation was carried out by hand: it becomes succeeded, with who resolved it
    and their note. Conflict unless the operation is failed."""
    op = get_or_404(session, ProvisioningOperation, operation_id, what="provisioning operation")
    if op.state != "failed":
        raise Conflict(f"only a failed operation can be resolved; this one is {op.state}",
                       state=op.state)
    before = snapshot(op)
    now = clock.now()
    op.state = "succeeded"
    op.resolved_by = actor.label[:400]
    op.resolution_note = note[:2000]
    op.completed_at = now
    op.updated_at = now
    session.flush()
    record(session, actor=actor, action="provisioning.resolve",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           before=before, after=snapshot(op))
    after_done(session, op, actor=actor, clock=clock)
    return op


def waiting_reasons(session: Session,
                    operations: Iterable[ProvisioningOperation], *,
                    clock: Clock) -> dict[uuid.UUID, str]:
    """Why each open, unclaimed operation is not running yet (operations absent: nothing to
    say): its target's circuit breaker is open, it starts later, or it retries later."""
    from idgov.provisioning import health  # health reads this module's operations

    ops = [o for o in operations if o.state in ("pending", "retry_scheduled")]
    if not ops:
        return {}
    now = clock.now()
    breakers = health.breakers(session, {o.application_id for o in ops})
    reasons: dict[uuid.UUID, str] = {}
    for op in ops:
        breaker = breakers.get(op.application_id)
        if breaker is not None and breaker.state != "closed":
            reasons[op.id] = health.describe_open(breaker)
        elif op.next_attempt_at is not None and op.next_attempt_at > now:
            if op.state == "retry_scheduled":
                reasons[op.id] = (f"retry at {op.next_attempt_at.isoformat()} after: "
                                  f"{op.last_error or 'a transient failure'}")
            else:
                reasons[op.id] = f"not before {op.next_attempt_at.isoformat()}"
    return reasons


def get_operation(session: Session, *, operation_id: uuid.UUID) -> ProvisioningOperation:
    return get_or_404(session, ProvisioningOperation, operation_id,
                      what="provisioning operation")


def list_operations(session: Session, *,
                    filters: OperationFilter) -> Page[ProvisioningOperation]:
    return paginate(session, repository.list_query(filters), ProvisioningOperation,
                    limit=filters.limit, cursor=filters.cursor)


def summarise(operations: Iterable[ProvisioningOperation]) -> Mapping[str, int]:
    """Counts by action, for audit contexts."""
    counts = {"grant": 0, "revoke": 0}
    for op in operations:
        counts[op.action] = counts.get(op.action, 0) + 1
    return counts
