"""Handover: what a leaver owned, and the approvals waiting on them, pass to their manager.

The successor is the leaver's nearest active manager (their manager, or when that person is
not active, the next one up). They receive the ownership of roles, entitlements,
applications, groups and the accounts the leaver owned (service, shared, administrative),
the open review flags the leaver was to decide, the mitigating controls of request lines
still waiting for approval, and the leaver's place among the approvers of every waiting
approval step they have not decided yet. A step's new approver is never the line's
requester or beneficiary, nor someone already named on the step: then the successor's own
nearest eligible manager steps in. Delegations from or to the leaver end.

Without any active manager nothing changes hands: the result and the ``identity.handover``
audit event list what stays with the leaver, and the administrators (explicit
``administrator`` grants) are told. The successor is told what they received.

Audit: ``<object>.handover`` per object changed (``role``, ``entitlement``, ``application``,
``group``, ``account``, ``review_flag``, ``request_line``), ``approval_step.handover``,
``delegation.revoke`` and one ``identity.handover`` summary on the leaver.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from idgov.approvals.service import first_eligible_manager, notify_waiting
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.db.repository import get_or_404
from idgov.models.application import Account, Application
from idgov.models.auth import ServiceRoleGrant
from idgov.models.catalog import Entitlement, Role
from idgov.models.hr import ReviewFlag
from idgov.models.identity import Group, Identity
from idgov.models.requests import (
    AccessRequest,
    Approval,
    ApprovalStep,
    ApprovalStepApprover,
    Delegation,
    RequestLine,
)
from idgov.notifications.service import notify
from idgov.types import Actor

# What a leaver may own, with the label used in results, audit and notifications.
_OWNED: tuple[tuple[str, Any, str], ...] = (
    ("roles", Role, "role"),
    ("entitlements", Entitlement, "entitlement"),
    ("applications", Application, "application"),
    ("groups", Group, "group"),
    ("accounts", Account, "account"),
)


@dataclass
class HandoverResult:
    """What passed from the leaver to ``successor_id`` (ids by kind), and what did not."""

    identity_id: uuid.UUID
    successor_id: uuid.UUID | None
    owned: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    approval_steps: list[uuid.UUID] = field(default_factory=list)
    review_flags: list[uuid.UUID] = field(default_factory=list)
    control_lines: list[uuid.UUID] = field(default_factory=list)
    delegations_ended: list[uuid.UUID] = field(default_factory=list)
    # Kind -> ids left with the leaver: no successor, or (steps) nobody eligible to step in.
    unowned: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(any(self.owned.values()) or self.approval_steps or self.review_flags
                    or self.control_lines)

    def summary(self) -> dict[str, Any]:
        """Counts and ids, for the audit trail."""
        return {
            "successor_id": self.successor_id,
            "owned": {k: [str(i) for i in v] for k, v in self.owned.items() if v},
            "approval_steps": [str(i) for i in self.approval_steps],
            "review_flags": [str(i) for i in self.review_flags],
            "control_lines": [str(i) for i in self.control_lines],
            "delegations_ended": [str(i) for i in self.delegations_ended],
            "unowned": {k: [str(i) for i in v] for k, v in self.unowned.items() if v},
        }


def successor_of(session: Session, identity_id: uuid.UUID) -> uuid.UUID | None:
    """The leaver's nearest active manager."""
    return first_eligible_manager(session, identity_id, {identity_id})


def _change(session: Session, obj: Any, column: str, value: uuid.UUID, *, object_type: str,
            leaver_id: uuid.UUID, actor: Actor, clock: Clock) -> None:
    before = snapshot(obj)
    setattr(obj, column, value)
    if hasattr(obj, "updated_at"):
        obj.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action=f"{object_type}.handover", object_type=object_type,
           object_id=obj.id, clock=clock, before=before, after=snapshot(obj),
           context={"from": str(leaver_id), "to": str(value), "reason": "the owner left"})


def _hand_over_ownership(session: Session, result: HandoverResult, *, actor: Actor,
                         clock: Clock) -> None:
    leaver, successor = result.identity_id, result.successor_id
    for key, model, object_type in _OWNED:
        rows = list(session.scalars(select(model).where(model.owner_id == leaver)
                                    .order_by(model.id)))
        if successor is None:
            result.unowned[key] = [r.id for r in rows]
            continue
        for row in rows:
            _change(session, row, "owner_id", successor, object_type=object_type,
                    leaver_id=leaver, actor=actor, clock=clock)
        result.owned[key] = [r.id for r in rows]
    flags = list(session.scalars(select(ReviewFlag).where(ReviewFlag.reviewer_id == leaver,
                                                          ReviewFlag.state == "open")
                                 .order_by(ReviewFlag.id)))
    lines = list(session.scalars(select(RequestLine).where(
        RequestLine.control_owner_id == leaver, RequestLine.state == "pending_approval")
        .order_by(RequestLine.id)))
    if successor is None:
        result.unowned["review_flags"] = [f.id for f in flags]
        result.unowned["control_lines"] = [ln.id for ln in lines]
        return
    for flag in flags:
        # Nobody reviews their own access: the successor's manager then.
        reviewer = successor if successor != flag.identity_id else first_eligible_manager(
            session, successor, {leaver, flag.identity_id})
        if reviewer is None:
            result.unowned.setdefault("review_flags", []).append(flag.id)
            continue
        _change(session, flag, "reviewer_id", reviewer, object_type="review_flag",
                leaver_id=leaver, actor=actor, clock=clock)
        result.review_flags.append(flag.id)
    for line in lines:
        _change(session, line, "control_owner_id", successor, object_type="request_line",
                leaver_id=leaver, actor=actor, clock=clock)
        result.control_lines.append(line.id)


def _hand_over_steps(session: Session, result: HandoverResult, *, actor: Actor,
                     clock: Clock) -> None:
    """Replace the leaver among the approvers of the waiting steps they have not decided."""
    leaver, successor = result.identity_id, result.successor_id
    decided = select(Approval.step_id).where(Approval.approver_id == leaver)
    rows = session.execute(
        select(ApprovalStep, RequestLine, AccessRequest)
        .join(ApprovalStepApprover, ApprovalStepApprover.step_id == ApprovalStep.id)
        .join(RequestLine, RequestLine.id == ApprovalStep.line_id)
        .join(AccessRequest, AccessRequest.id == RequestLine.request_id)
        .where(ApprovalStepApprover.identity_id == leaver, ApprovalStep.state == "waiting",
               ApprovalStep.id.not_in(decided))
        .order_by(ApprovalStep.due_at, ApprovalStep.id)).all()
    now = clock.now()
    for step, line, request in rows:
        current = set(session.scalars(select(ApprovalStepApprover.identity_id)
                                      .where(ApprovalStepApprover.step_id == step.id)))
        excluded = {request.requester_id, line.beneficiary_id, leaver, *current}
        substitute = None
        if successor is not None:
            substitute = (successor if successor not in excluded
                          else first_eligible_manager(session, successor, excluded))
        if substitute is None:
            result.unowned.setdefault("approval_steps", []).append(step.id)
            continue
        before = snapshot(step)
        named = session.get(ApprovalStepApprover, (step.id, leaver))
        if named is not None:
            session.delete(named)
        session.add(ApprovalStepApprover(step_id=step.id, identity_id=substitute,
                                         origin="handover", added_at=now))
        step.updated_at = now
        session.flush()
        record(session, actor=actor, action="approval_step.handover",
               object_type="approval_step", object_id=step.id, clock=clock, before=before,
               after=snapshot(step),
               context={"line": line.number, "removed_approver": str(leaver),
                        "added_approver": str(substitute), "reason": "the approver left"})
        notify_waiting(session, step=step, line=line, approver_ids=[substitute], clock=clock)
        result.approval_steps.append(step.id)


def _end_delegations(session: Session, result: HandoverResult, *, actor: Actor,
                     clock: Clock) -> None:
    leaver = result.identity_id
    now = clock.now()
    delegations = list(session.scalars(
        select(Delegation)
        .where(or_(Delegation.delegator_id == leaver, Delegation.delegate_id == leaver),
               Delegation.revoked_at.is_(None), Delegation.ends_at > now)
        .order_by(Delegation.id)))
    for delegation in delegations:
        before = snapshot(delegation)
        delegation.revoked_at = now
        delegation.updated_at = now
        session.flush()
        record(session, actor=actor, action="delegation.revoke", object_type="delegation",
               object_id=delegation.id, clock=clock, before=before, after=snapshot(delegation),
               context={"reason": "a party to the delegation left"})
        result.delegations_ended.append(delegation.id)


def _names(session: Session, model: Any, ids: list[uuid.UUID]) -> list[str]:
    if not ids:
        return []
    column = model.username if model is Account else model.name
    return [str(n) for n in session.scalars(select(column).where(model.id.in_(ids))
                                            .order_by(column))]


def _describe(session: Session, result: HandoverResult, ids: dict[str, list[uuid.UUID]]) -> str:
    parts = []
    for key, model, _type in _OWNED:
        names = _names(session, model, ids.get(key, []))
        if names:
            parts.append(f"{key}: {', '.join(names)}")
    for key in ("approval_steps", "review_flags", "control_lines"):
        found = ids.get(key, [])
        if found:
            parts.append(f"{key.replace('_', ' ')}: {len(found)}")
    return "; ".join(parts)


def _tell(session: Session, leaver: Identity, result: HandoverResult, *, clock: Clock) -> None:
    if result.successor_id is not None and result.changed:
        received = dict(result.owned, approval_steps=result.approval_steps,
                        review_flags=result.review_flags, control_lines=result.control_lines)
        notify(session, recipient_id=result.successor_id, kind="lifecycle.handover",
               subject=f"{leaver.display_name} left: what they owned is now yours",
               body=(f"{leaver.display_name} ({leaver.employee_id}) left. You now own or decide "
                     f"what they did: {_describe(session, result, received)}."),
               object_type="identity", object_id=str(leaver.id),
               dedupe_key=f"lifecycle.handover:{leaver.id}:{clock.now().isoformat()}",
               clock=clock)
    left = {k: v for k, v in result.unowned.items() if v}
    if not left:
        return
    admins = session.scalars(
        select(Identity.id).join(ServiceRoleGrant, ServiceRoleGrant.identity_id == Identity.id)
        .where(ServiceRoleGrant.role == "administrator", Identity.lifecycle_state == "active")
        .distinct().order_by(Identity.id))
    for admin_id in admins:
        notify(session, recipient_id=admin_id, kind="lifecycle.unowned",
               subject=f"{leaver.display_name} left: owner needed",
               body=(f"{leaver.display_name} ({leaver.employee_id}) left and nobody could take "
                     f"over: {_describe(session, result, left)}. Choose new owners or "
                     "approvers."),
               object_type="identity", object_id=str(leaver.id),
               dedupe_key=f"lifecycle.unowned:{leaver.id}:{admin_id}:{clock.now().isoformat()}",
               clock=clock)


def hand_over(session: Session, *, identity_id: uuid.UUID, actor: Actor,
              clock: Clock) -> HandoverResult:
    """Pass what the leaver owned and the approvals waiting on them to their nearest active
    manager (see the module docstring); end their delegations. Running it again finds
    nothing more to hand over. NotFound for an unknown identity."""
    leaver = get_or_404(session, Identity, identity_id, what="identity")
    result = HandoverResult(identity_id=identity_id,
                            successor_id=successor_of(session, identity_id))
    _hand_over_ownership(session, result, actor=actor, clock=clock)
    _hand_over_steps(session, result, actor=actor, clock=clock)
    _end_delegations(session, result, actor=actor, clock=clock)
    if result.changed or result.delegations_ended or any(result.unowned.values()):
        record(session, actor=actor, action="identity.handover", object_type="identity",
               object_id=identity_id, clock=clock, context=result.summary())
    _tell(session, leaver, result, clock=clock)
    return result
