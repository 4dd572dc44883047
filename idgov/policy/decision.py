"""The policy decision for one request line: pure, explainable, fast from a warm snapshot.

``decide`` expands the asked item through role inclusion, evaluates SoD against what the
beneficiary already holds + what is pending for them + what is asked, and states the risk,
every violation the line would create (with the exact paths on both sides), whether it is
blocked, and the approvals the line needs. No database access: the caller loads the inputs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

from idgov.policy.expansion import AssignmentRef, Grant
from idgov.policy.scan import explain_rules, touched
from idgov.policy.snapshot import RISK_ORDER, ItemRef, PolicySnapshot, risk_rank
from idgov.policy.sod import ExceptionRef, HeldItem, Violation

__all__ = [
    "REQUESTED_ID",
    "RISK_ORDER",
    "ApprovalNeed",
    "ApprovalPolicy",
    "Decision",
    "Mitigation",
    "StageSpec",
    "decide",
    "risk_at_most",
    "risk_rank",
    "violation_as_dict",
]

ApproverKind = Literal["manager", "owner", "group"]
NeedKind = Literal["manager", "owner", "group", "control_owner", "dual_control"]
REQUESTED_ID = uuid.UUID(int=0)
"""Assignment id standing for the asked item in explanations (unless ``requested_id``)."""


def risk_at_most(risk: str, ceiling: str | None) -> bool:
    """``risk`` is no higher than ``ceiling`` (None: nothing is low enough)."""
    return ceiling is not None and risk_rank(risk) <= risk_rank(ceiling)


@dataclass(frozen=True)
class StageSpec:
    """One stage of a request type's approval chain."""

    approver: ApproverKind
    group_id: uuid.UUID | None = None
    mode: Literal["any", "all"] = "any"


@dataclass(frozen=True)
class ApprovalPolicy:
    """What a request type says about approvals (from ``RequestType``)."""

    stages: tuple[StageSpec, ...] = (StageSpec("manager"), StageSpec("owner"))
    auto_approve_max_risk: str | None = None
    dual_control_group_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Mitigation:
    """A mitigating control offered with a line that breaks an SoD rule allowing exceptions."""

    control: str
    owner_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class ApprovalNeed:
    """One approval stage the line needs, in order (``stage`` counts from 1).

    ``required`` distinct approvals complete the stage (2 for dual control; for mode "all",
    the approvals module counts the resolved approvers). ``group_id`` for a group stage or a
    dual-control group; ``owner_id`` for the control owner of a mitigation.
    """

    stage: int
    kind: NeedKind
    reason: str
    mode: Literal["any", "all"] = "any"
    required: int = 1
    group_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Decision:
    """The answer for one line, with its explanation."""

    item: ItemRef
    action: Literal["grant", "revoke"]
    allowed: bool
    risk: str
    privileged: bool
    data_classifications: frozenset[str]
    entitlements: tuple[uuid.UUID, ...]
    new_entitlements: tuple[uuid.UUID, ...]
    violations: tuple[Violation, ...]
    blocking: tuple[Violation, ...]
    exceptions_needed: tuple[uuid.UUID, ...]
    approvals: tuple[ApprovalNeed, ...]
    auto_approved: bool
    reasons: tuple[str, ...] = field(default=())
    policy_version: str = ""
    item_name: str = ""
    mitigation: Mitigation | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, stored with the line and shown to approvers."""
        blocking = {v.rule.id for v in self.blocking}
        needed = set(self.exceptions_needed)
        return {
            "item": {"type": self.item.type, "id": str(self.item.id), "name": self.item_name},
            "action": self.action,
            "allowed": self.allowed,
            "auto_approved": self.auto_approved,
            "risk": self.risk,
            "privileged": self.privileged,
            "data_classifications": sorted(self.data_classifications),
            "entitlements": [str(e) for e in self.entitlements],
            "new_entitlements": [str(e) for e in self.new_entitlements],
            "violations": [
                {**violation_as_dict(v), "blocking": v.rule.id in blocking,
                 "exception_needed": v.rule.id in needed}
                for v in self.violations],
            "blocking": [str(v.rule.id) for v in self.blocking],
            "exceptions_needed": [str(r) for r in self.exceptions_needed],
            "mitigation": None if self.mitigation is None else {
                "control": self.mitigation.control,
                "owner_id": str(self.mitigation.owner_id),
                "expires_at": self.mitigation.expires_at.isoformat()},
            "approvals": [
                {"stage": a.stage, "kind": a.kind, "reason": a.reason, "mode": a.mode,
                 "required": a.required,
                 "group_id": None if a.group_id is None else str(a.group_id),
                 "owner_id": None if a.owner_id is None else str(a.owner_id)}
                for a in self.approvals],
            "reasons": list(self.reasons),
            "policy_version": self.policy_version,
        }


def _grant_dict(grant: Grant) -> dict[str, Any]:
    return {"assignment_id": str(grant.assignment_id), "source": grant.source,
            "path": [{"type": s.type, "id": str(s.id), "name": s.name} for s in grant.path]}


def _held_dict(held: HeldItem) -> dict[str, Any]:
    return {"type": held.item.type, "id": str(held.item.id), "name": held.name,
            "grants": [_grant_dict(g) for g in held.grants]}


def violation_as_dict(violation: Violation) -> dict[str, Any]:
    """A violation, JSON-ready: the rule, each side's held items with every path, the
    exception covering it (if any) and the explanation sentence."""
    rule, exception = violation.rule, violation.exception
    return {
        "rule": {"id": str(rule.id), "name": rule.name, "severity": rule.severity,
                 "exception_allowed": rule.exception_allowed},
        "side_a": [_held_dict(h) for h in violation.side_a],
        "side_b": [_held_dict(h) for h in violation.side_b],
        "mitigated": violation.mitigated,
        "exception": None if exception is None else {
            "id": str(exception.id), "expires_at": exception.expires_at.isoformat(),
            "control": exception.control},
        "explanation": violation.explanation(),
    }


_NO_RULES: frozenset[int] = frozenset()


@dataclass(frozen=True)
class _Reach:
    """What the asked item reaches."""

    entitlements: tuple[uuid.UUID, ...]
    risk: str
    privileged: bool
    data_classifications: frozenset[str]
    side_a: frozenset[int]
    side_b: frozenset[int]


def _reach(snapshot: PolicySnapshot, item: ItemRef) -> _Reach:
    if item.type == "role":
        if item.id not in snapshot.roles:
            raise ValueError(f"role {item.id} is not in the policy snapshot")
        c = snapshot.closure(item.id)
        return _Reach(snapshot.ordered_entitlements(item.id), c.risk, c.privileged,
                      c.data_classifications, c.side_a, c.side_b)
    node = snapshot.entitlements.get(item.id)
    if node is None:
        raise ValueError(f"entitlement {item.id} is not in the policy snapshot")
    classes = frozenset() if node.data_classification == "none" else frozenset(
        {node.data_classification})
    index = snapshot.rule_index
    return _Reach((node.id,), node.risk, node.privileged, classes,
                  index.a_by_entitlement.get(node.id, _NO_RULES),
                  index.b_by_entitlement.get(node.id, _NO_RULES))


def _by_rule(exceptions: Mapping[uuid.UUID, ExceptionRef] | Sequence[ExceptionRef]
             ) -> Mapping[uuid.UUID, ExceptionRef]:
    if isinstance(exceptions, Mapping):
        return exceptions
    return {e.rule_id: e for e in exceptions}


def _approvals(policy: ApprovalPolicy, *, mitigation: Mitigation | None, needs_control: bool,
               dual: bool, risk: str, privileged: bool) -> tuple[ApprovalNeed, ...]:
    needs: list[ApprovalNeed] = []
    for spec in policy.stages:
        reason = {"manager": "the beneficiary's manager approves",
                  "owner": "the owner of the item approves",
                  "group": "a member of the approval group approves"}[spec.approver]
        if spec.approver == "group" and spec.mode == "all":
            reason = "every member of the approval group approves"
        needs.append(ApprovalNeed(stage=len(needs) + 1, kind=spec.approver, reason=reason,
                                  mode=spec.mode, group_id=spec.group_id))
    if needs_control and mitigation is not None:
        needs.append(ApprovalNeed(stage=len(needs) + 1, kind="control_owner",
                                  reason=f"the owner of the mitigating control "
                                         f"{mitigation.control!r} accepts it",
                                  owner_id=mitigation.owner_id))
    if dual:
        why = " and ".join(w for w, on in (("privileged", privileged),
                                            (f"{risk} risk", risk == "critical")) if on)
        needs.append(ApprovalNeed(stage=len(needs) + 1, kind="dual_control", required=2,
                                  reason=f"two distinct people approve ({why} access)",
                                  group_id=policy.dual_control_group_id))
    return tuple(needs)


def decide(
    snapshot: PolicySnapshot,
    *,
    item: ItemRef,
    action: Literal["grant", "revoke"] = "grant",
    held: Sequence[AssignmentRef],
    pending: Sequence[AssignmentRef] = (),
    exceptions: Mapping[uuid.UUID, ExceptionRef] | Sequence[ExceptionRef] = (),
    policy: ApprovalPolicy = ApprovalPolicy(),
    mitigation: Mitigation | None = None,
    requested_id: uuid.UUID | None = None,
) -> Decision:
    """The decision for granting (or revoking) ``item`` to a beneficiary holding ``held``.

    ``pending`` are the grant lines of the beneficiary's other open requests (as
    AssignmentRef with source "pending"); ``exceptions`` the beneficiary's active SoD
    exceptions; ``requested_id`` names the asked item's grant in explanations (default
    :data:`REQUESTED_ID`; its source is "requested"). Raises ValueError for an item the
    snapshot does not know.
    """
    reach = _reach(snapshot, item)
    name = snapshot.item_name(item)
    common = partial(Decision, item=item, action=action, risk=reach.risk,
                     privileged=reach.privileged,
                     data_classifications=reach.data_classifications,
                     entitlements=reach.entitlements, policy_version=snapshot.version,
                     item_name=name)
    if action == "revoke":
        return common(allowed=True, new_entitlements=(), violations=(), blocking=(),
                      exceptions_needed=(), approvals=(), auto_approved=True,
                      reasons=("revoking access needs no approval and breaks no rule",))

    before = (*held, *pending)
    held_entitlements: set[uuid.UUID] = set()
    for a in before:
        if a.role_id is not None:
            held_entitlements |= snapshot.closure(a.role_id).entitlement_set
        else:
            assert a.entitlement_id is not None
            held_entitlements.add(a.entitlement_id)
    new_entitlements = tuple(e for e in reach.entitlements if e not in held_entitlements)

    before_a, before_b = touched(snapshot, before)
    newly_broken = (((before_a | reach.side_a) & (before_b | reach.side_b))
                    - (before_a & before_b))  # broken before: not this line's doing

    violations: tuple[Violation, ...] = ()
    if newly_broken:
        asked = AssignmentRef(requested_id or REQUESTED_ID, "requested",
                              role_id=item.id if item.type == "role" else None,
                              entitlement_id=item.id if item.type == "entitlement" else None)
        violations = explain_rules(snapshot, (*before, asked), newly_broken,
                                   _by_rule(exceptions))

    reasons: list[str] = []
    blocking: list[Violation] = []
    needed: list[uuid.UUID] = []
    for v in violations:
        rule = f"SoD rule {v.rule.name!r} ({v.rule.severity})"
        if v.exception is not None:
            reasons.append(f"{rule} is broken but covered by active exception {v.exception.id}")
        elif v.rule.exception_allowed and mitigation is not None:
            needed.append(v.rule.id)
            reasons.append(f"{rule} is broken: an exception with the mitigating control "
                           f"{mitigation.control!r} is needed")
        else:
            blocking.append(v)
            hint = (" (offer a mitigating control to ask for an exception)"
                    if v.rule.exception_allowed else " (the rule allows no exception)")
            reasons.append(f"{rule} is broken and blocks the request{hint}")

    allowed = not blocking
    auto = (allowed and not reach.privileged and not violations
            and risk_at_most(reach.risk, policy.auto_approve_max_risk))
    approvals: tuple[ApprovalNeed, ...] = ()
    if allowed and not auto:
        approvals = _approvals(policy, mitigation=mitigation, needs_control=bool(needed),
                               dual=reach.privileged or reach.risk == "critical",
                               risk=reach.risk, privileged=reach.privileged)
    if not allowed:
        reasons.append("refused: an SoD conflict blocks the request")
    elif auto:
        reasons.append(f"auto-approved: risk {reach.risk} is at most "
                       f"{policy.auto_approve_max_risk}, not privileged, no SoD conflict")
    else:
        why = []
        if policy.auto_approve_max_risk is None:
            why.append("the request type approves nothing automatically")
        elif not risk_at_most(reach.risk, policy.auto_approve_max_risk):
            why.append(f"risk {reach.risk} is above {policy.auto_approve_max_risk}")
        if reach.privileged:
            why.append("privileged access")
        if violations:
            why.append("an SoD conflict")
        reasons.append("approval needed: " + ", ".join(why))
    return common(allowed=allowed, new_entitlements=new_entitlements, violations=violations,
                  blocking=tuple(blocking), exceptions_needed=tuple(needed),
                  approvals=approvals, auto_approved=auto, reasons=tuple(reasons),
                  mitigation=mitigation if needed else None)
