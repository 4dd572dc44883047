"""What a reviewer sees of an item, fixed at generation: how the access was granted (source,
request and line numbers, approvers), when it was last certified, its SoD conflicts, how
common it is among the identity's peers, its last sign-in where the target tells.

Everything here is loaded per chunk of assignments with a few set-based queries (never one
query per item), or once per campaign (:class:`PeerTable`), so that a campaign of a million
items pays a few hundred queries.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, or_, select
from sqlalchemy.orm import Session

from idgov.assignments.repository import in_force
from idgov.models.application import Account
from idgov.models.assignment import Assignment
from idgov.models.catalog import SodException
from idgov.models.identity import Identity
from idgov.models.requests import AccessRequest, Approval, ApprovalStep, RequestLine
from idgov.policy.expansion import AssignmentRef
from idgov.policy.scan import touched
from idgov.policy.snapshot import PolicySnapshot

# The key of an account's attributes where aggregation keeps the target's last sign-in.
LAST_SIGN_IN_KEY = "last_sign_in"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def grants(session: Session, line_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """For request lines: the request and line numbers and who approved them (in order)."""
    if not line_ids:
        return {}
    found: dict[uuid.UUID, dict[str, Any]] = {
        line_id: {"request": request_no, "line": line_no, "approvers": []}
        for line_id, line_no, request_no in session.execute(
            select(RequestLine.id, RequestLine.number, AccessRequest.number)
            .join(AccessRequest, AccessRequest.id == RequestLine.request_id)
            .where(RequestLine.id.in_(line_ids)))}
    approvals = session.execute(
        select(ApprovalStep.line_id, Approval.approver_id, Identity.display_name,
               Approval.decided_at)
        .join(Approval, Approval.step_id == ApprovalStep.id)
        .join(Identity, Identity.id == Approval.approver_id)
        .where(ApprovalStep.line_id.in_(found), Approval.decision == "approve")
        .order_by(ApprovalStep.line_id, ApprovalStep.stage, Approval.decided_at))
    for line_id, approver_id, name, decided_at in approvals:
        found[line_id]["approvers"].append({"id": str(approver_id), "name": name,
                                            "at": iso(decided_at)})
    return found


def last_sign_ins(session: Session, identity_ids: Collection[uuid.UUID],
                  application_ids: Collection[uuid.UUID]
                  ) -> dict[tuple[uuid.UUID, uuid.UUID], str]:
    """The last sign-in the targets told of, per (identity, application), where known: the
    ``last_sign_in`` attribute of the identity's primary account."""
    if not identity_ids or not application_ids:
        return {}
    seen = Account.attributes[LAST_SIGN_IN_KEY].as_string()
    rows = session.execute(
        select(Account.identity_id, Account.application_id, seen)
        .where(Account.identity_id.in_(identity_ids),
               Account.application_id.in_(application_ids),
               Account.account_type == "primary", seen.is_not(None)))
    return {(i, a): s for i, a, s in rows if i is not None}


class PeerTable:
    """How many of each (department, job code) group hold each role and entitlement, from
    one aggregate query per campaign; the share for one identity leaves the identity out."""

    def __init__(self, group_of: Mapping[uuid.UUID, int | None],
                 group_sizes: Mapping[int, int], active: Collection[uuid.UUID],
                 counts: Mapping[tuple[int, uuid.UUID], int]) -> None:
        self.group_of = group_of
        self.group_sizes = group_sizes
        self.active = active
        self.counts = counts

    @classmethod
    def load(cls, session: Session, *, at: datetime, group_of: Mapping[uuid.UUID, int | None],
             groups: Mapping[tuple[str, str], int], active: Collection[uuid.UUID],
             role_ids: Collection[uuid.UUID] | None = None,
             entitlement_ids: Collection[uuid.UUID] | None = None) -> PeerTable:
        """Count active holders per group and item (all items, or only those given)."""
        sizes: dict[int, int] = defaultdict(int)
        for identity_id in active:
            group = group_of.get(identity_id)
            if group is not None:
                sizes[group] += 1
        stmt = (select(Identity.department, Identity.job_code, Assignment.role_id,
                       Assignment.entitlement_id, func.count(distinct(Assignment.identity_id)))
                .join(Identity, Identity.id == Assignment.identity_id)
                .where(in_force(at), Identity.lifecycle_state == "active",
                       Identity.department.is_not(None), Identity.job_code.is_not(None))
                .group_by(Identity.department, Identity.job_code, Assignment.role_id,
                          Assignment.entitlement_id))
        if role_ids is not None and entitlement_ids is not None:
            stmt = stmt.where(or_(Assignment.role_id.in_(role_ids),
                                  Assignment.entitlement_id.in_(entitlement_ids)))
        counts: dict[tuple[int, uuid.UUID], int] = {}
        for department, job_code, role_id, entitlement_id, holders in session.execute(stmt):
            group = groups.get((department or "", job_code or ""))
            item_id = role_id or entitlement_id
            if group is not None and item_id is not None:
                counts[group, item_id] = holders
        return cls(group_of, sizes, active, counts)

    def share(self, identity_id: uuid.UUID, item_id: uuid.UUID) -> dict[str, Any] | None:
        """``{"peers": n, "holding": k, "share": k/n}`` among the identity's peers (the
        identity left out), None without department and job code or without peers."""
        group = self.group_of.get(identity_id)
        if group is None:
            return None
        mine = 1 if identity_id in self.active else 0
        peers = self.group_sizes.get(group, 0) - mine
        if peers <= 0:
            return None
        holding = max(0, self.counts.get((group, item_id), 0) - mine)
        return {"peers": peers, "holding": holding, "share": round(holding / peers, 3)}


@dataclass(frozen=True)
class Held:
    """One assignment of a chunk, as SoD needs it."""

    assignment_id: uuid.UUID
    identity_id: uuid.UUID
    role_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None


def sod_relevant(snapshot: PolicySnapshot) -> tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]]:
    """The roles and entitlements that touch a side of an enabled SoD rule (memoised)."""
    memo = snapshot.memo("certification.sod_relevant")
    if "found" not in memo:
        index = snapshot.rule_index
        entitlements = frozenset(index.by_entitlement)
        roles = frozenset(r for r in snapshot.roles
                          if snapshot.closure(r).side_a or snapshot.closure(r).side_b)
        memo["found"] = (roles, entitlements)
    found: tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]] = memo["found"]
    return found


def sod_conflicts(session: Session, snapshot: PolicySnapshot, chunk: Sequence[Held], *,
                  at: datetime) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """For the chunk's assignments that take part in an SoD violation of their holder (all
    of the holder's assignments in force counted), the violated rules:
    ``[{"rule_id", "rule", "severity", "mitigated"}]`` by assignment id. ``mitigated``: an
    SoD exception in force covers the identity for that rule."""
    index = snapshot.rule_index
    if not index.rules:
        return {}
    sides: dict[uuid.UUID, frozenset[int]] = {}
    for held in chunk:
        if held.role_id is not None:
            closure = snapshot.closure(held.role_id)
            mine = closure.side_a | closure.side_b
        else:
            a, b = index.by_entitlement.get(held.entitlement_id,  # type: ignore[arg-type]
                                            (frozenset(), frozenset()))
            mine = a | b
        if mine:
            sides[held.assignment_id] = mine
    if not sides:
        return {}
    touching = {h.identity_id for h in chunk if h.assignment_id in sides}
    holdings: dict[uuid.UUID, list[AssignmentRef]] = defaultdict(list)
    stmt = select(Assignment.id, Assignment.identity_id, Assignment.source,
                  Assignment.role_id, Assignment.entitlement_id).where(
        Assignment.identity_id.in_(touching), in_force(at))
    roles, entitlements = sod_relevant(snapshot)
    if len(roles) + len(entitlements) <= 1_000:  # else: every holding, filtered by touched()
        stmt = stmt.where(or_(Assignment.role_id.in_(roles),
                              Assignment.entitlement_id.in_(entitlements)))
    for a_id, identity_id, source, role_id, ent_id in session.execute(stmt):
        holdings[identity_id].append(AssignmentRef(a_id, source, role_id, ent_id))
    broken: dict[uuid.UUID, set[int]] = {}
    for identity_id, refs in holdings.items():
        side_a, side_b = touched(snapshot, refs)
        if side_a & side_b:
            broken[identity_id] = side_a & side_b
    if not broken:
        return {}
    mitigated = {(i, r) for i, r in session.execute(
        select(SodException.identity_id, SodException.rule_id).where(
            SodException.identity_id.in_(broken), SodException.created_at <= at,
            SodException.expires_at > at,
            or_(SodException.revoked_at.is_(None), SodException.revoked_at > at)))}
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for held in chunk:
        positions = sides.get(held.assignment_id, frozenset()) & broken.get(
            held.identity_id, set())
        if positions:
            rules = [index.rules[p] for p in sorted(positions)]
            found[held.assignment_id] = [
                {"rule_id": str(r.id), "rule": r.name, "severity": r.severity,
                 "mitigated": r.exception_allowed and (held.identity_id, r.id) in mitigated}
                for r in rules]
    return found
