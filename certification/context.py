"""What a reviewer sees of an item, fixed at generation: how the access was granted (source,
request and line numbers, approvers), when it was last certified, its SoD conflicts, how
common it is among the identity's peers, its last sign-in where the target tells.

Everything here is loaded per chunk of assignments with a few set-based queries (never one
query per item), or once per campaign (:class:`PeerTable`), so that a campaign of a million
items pays a few hundred queries. Generation keys what it looks up by ids in their stored
text form (``stored=`` below, :func:`certification.writer.id_text`), so that no UUID object
is made per row; without it, ids are UUIDs.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
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


def _uuids(ids: Collection[Hashable]) -> list[uuid.UUID]:
    return [i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in ids]


def last_sign_ins(session: Session, identity_ids: Collection[Hashable],
                  application_ids: Collection[Hashable], *,
                  stored: Callable[[uuid.UUID], Hashable] | None = None
                  ) -> dict[tuple[Hashable, Hashable], str]:
    """The last sign-in the targets told of, per (identity, application), where known: the
    ``last_sign_in`` attribute of the identity's primary account. Keys as ``stored`` makes
    them (UUIDs without it)."""
    if not identity_ids or not application_ids:
        return {}
    seen = Account.attributes[LAST_SIGN_IN_KEY].as_string()
    rows = session.execute(
        select(Account.identity_id, Account.application_id, seen)
        .where(Account.identity_id.in_(_uuids(identity_ids)),
               Account.application_id.in_(_uuids(application_ids)),
               Account.account_type == "primary", seen.is_not(None)))
    if stored is None:
        return {(i, a): s for i, a, s in rows if i is not None}
    return {(stored(i), stored(a)): s for i, a, s in rows if i is not None}


def _same(value: uuid.UUID) -> Hashable:
    return value


class PeerTable:
    """How many of each (department, job code) group hold each role and entitlement, from
    one aggregate query per campaign; the share for one identity leaves the identity out."""

    def __init__(self, group_of: Mapping[Any, int | None],
                 group_sizes: Mapping[int, int], active: Collection[Any],
                 counts: Mapping[Hashable, Mapping[int, int]]) -> None:
        self.group_of = group_of
        self.group_sizes = group_sizes
        self.active = active
        self.counts = counts

    @classmethod
    def load(cls, session: Session, *, at: datetime, group_of: Mapping[Any, int | None],
             groups: Mapping[tuple[str, str], int], active: Collection[Any],
             role_ids: Collection[uuid.UUID] | None = None,
             entitlement_ids: Collection[uuid.UUID] | None = None,
             stored: Callable[[uuid.UUID], Hashable] | None = None) -> PeerTable:
        """Count active holders per group and item (all items, or only those given); items
        keyed as ``stored`` makes them (UUIDs without it)."""
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
        key = stored or _same
        counts: dict[uuid.UUID, dict[int, int]] = {}  # item -> group -> holders
        for department, job_code, role_id, entitlement_id, holders in session.execute(stmt):
            group = groups.get((department or "", job_code or ""))
            item_id = role_id or entitlement_id
            if group is not None and item_id is not None:
                per_group = counts.get(item_id)
                if per_group is None:
                    per_group = counts[item_id] = {}
                per_group[group] = holders
        return cls(group_of, sizes, active, {key(k): v for k, v in counts.items()})

    def share(self, identity_id: Hashable, item_id: Hashable) -> dict[str, Any] | None:
        """``{"peers": n, "holding": k, "share": k/n}`` among the identity's peers (the
        identity left out), None without department and job code or without peers."""
        group = self.group_of.get(identity_id)
        if group is None:
            return None
        return self.group_share(group, identity_id in self.active, item_id)

    def group_share(self, group: int, active: bool, item_id: Hashable
                    ) -> dict[str, Any] | None:
        """:meth:`share` for a member of ``group`` (active or not)."""
        mine = 1 if active else 0
        return self.share_of(self.group_sizes.get(group, 0) - mine,
                             self.counts.get(item_id, {}).get(group, 0) - mine)

    @staticmethod
    def share_of(peers: int, holding: int) -> dict[str, Any] | None:
        """The share for ``peers`` peers of whom ``holding`` hold the item (None: no peers)."""
        if peers <= 0:
            return None
        holding = max(0, holding)
        return {"peers": peers, "holding": holding, "share": round(holding / peers, 3)}

@dataclass(frozen=True)
class Held:
    """One assignment of a chunk, as SoD needs it."""

    assignment_id: Hashable  # as the caller keys it (a UUID or its stored text)
    identity_id: Hashable
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
                  at: datetime, stored: Callable[[uuid.UUID], Hashable] | None = None
                  ) -> dict[Hashable, list[dict[str, Any]]]:
    """For the chunk's assignments that take part in an SoD violation of their holder (all
    of the holder's assignments in force counted), the violated rules:
    ``[{"rule_id", "rule", "severity", "mitigated"}]`` by assignment id. ``mitigated``: an
    SoD exception in force covers the identity for that rule. With ``stored``, the chunk's
    identity ids are in the form it makes (else UUIDs)."""
    key: Callable[[uuid.UUID], Hashable] = stored or _same
    index = snapshot.rule_index
    if not index.rules:
        return {}
    sides: dict[Hashable, frozenset[int]] = {}
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
    holdings: dict[Hashable, list[AssignmentRef]] = defaultdict(list)
    stmt = select(Assignment.id, Assignment.identity_id, Assignment.source,
                  Assignment.role_id, Assignment.entitlement_id).where(
        Assignment.identity_id.in_(_uuids(touching)), in_force(at))
    roles, entitlements = sod_relevant(snapshot)
    if len(roles) + len(entitlements) <= 1_000:  # else: every holding, filtered by touched()
        stmt = stmt.where(or_(Assignment.role_id.in_(roles),
                              Assignment.entitlement_id.in_(entitlements)))
    for a_id, identity_id, source, role_id, ent_id in session.execute(stmt):
        holdings[key(identity_id)].append(AssignmentRef(a_id, source, role_id, ent_id))
    broken: dict[Hashable, set[int]] = {}
    for holder, refs in holdings.items():
        side_a, side_b = touched(snapshot, refs)
        if side_a & side_b:
            broken[holder] = side_a & side_b
    if not broken:
        return {}
    mitigated = {(key(i), r) for i, r in session.execute(
        select(SodException.identity_id, SodException.rule_id).where(
            SodException.identity_id.in_(_uuids(broken)), SodException.created_at <= at,
            SodException.expires_at > at,
            or_(SodException.revoked_at.is_(None), SodException.revoked_at > at)))}
    found: dict[Hashable, list[dict[str, Any]]] = {}
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
