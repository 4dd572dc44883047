"""Preview of a role composition change: who gains or loses what, and new SoD violations.

Read-only. The catalog as valid now is the "before" snapshot; the "after" snapshot is the
same content with the proposed links added and ended (:func:`apply_proposal`, pure). Every
holder of the role (an assignment in force of it or of a role that includes it) is expanded
in both with the pure policy functions, and the differences are what saving the change
through the composition endpoints will record as provisioning operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.assignments.repository import in_force
from idgov.catalog import repository
from idgov.catalog.schemas import RoleImpactIn
from idgov.catalog.service import get_role
from idgov.catalog.snapshot import current_snapshot
from idgov.clock import Clock
from idgov.errors import CycleError, ErrorList
from idgov.models.assignment import Assignment
from idgov.models.catalog import SodException
from idgov.models.identity import Identity
from idgov.policy.expansion import AssignmentRef, effective_access, find_cycle
from idgov.policy.snapshot import (
    InclusionEdge,
    PolicySnapshot,
    RoleEntitlementEdge,
    make_snapshot,
)
from idgov.policy.sod import ExceptionRef, Violation, evaluate_sod


def apply_proposal(before: PolicySnapshot, *, role_id: uuid.UUID,
                   add_entitlements: Iterable[uuid.UUID] = (),
                   end_entitlements: Iterable[uuid.UUID] = (),
                   include_roles: Iterable[uuid.UUID] = (),
                   end_inclusions: Iterable[uuid.UUID] = ()) -> PolicySnapshot:
    """``before`` with ``role_id``'s proposed links added and ended (pure; no checks)."""
    ended_grants = set(end_entitlements)
    ended_children = set(end_inclusions)
    inclusions = [e for e in before.inclusions
                  if not (e.parent_id == role_id and e.child_id in ended_children)]
    inclusions += [InclusionEdge(parent_id=role_id, child_id=c) for c in include_roles]
    grants = [e for e in before.role_entitlements
              if not (e.role_id == role_id and e.entitlement_id in ended_grants)]
    grants += [RoleEntitlementEdge(role_id=role_id, entitlement_id=e) for e in add_entitlements]
    return make_snapshot(as_of=before.as_of, roles=before.roles.values(),
                         entitlements=before.entitlements.values(), inclusions=inclusions,
                         role_entitlements=grants, sod_rules=before.sod_rules)


def ancestors(snapshot: PolicySnapshot, role_id: uuid.UUID) -> set[uuid.UUID]:
    """``role_id`` and every role that includes it, directly or not (pure)."""
    parents: dict[uuid.UUID, list[uuid.UUID]] = {}
    for edge in snapshot.inclusions:
        parents.setdefault(edge.child_id, []).append(edge.parent_id)
    found = {role_id}
    queue = [role_id]
    while queue:
        for parent in parents.get(queue.pop(), ()):
            if parent not in found:
                found.add(parent)
                queue.append(parent)
    return found


@dataclass(frozen=True)
class HolderChange:
    identity_id: uuid.UUID
    display_name: str
    gains: tuple[uuid.UUID, ...]
    losses: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class NewViolation:
    identity_id: uuid.UUID
    display_name: str
    violation: Violation


@dataclass(frozen=True)
class Impact:
    role: Any
    before: PolicySnapshot
    after: PolicySnapshot
    holders: int
    changes: Sequence[HolderChange]
    new_violations: Sequence[NewViolation]

    @property
    def operations_expected(self) -> int:
        return sum(len(c.gains) + len(c.losses) for c in self.changes)

    def as_dict(self) -> dict[str, Any]:
        def ent(eid: uuid.UUID) -> dict[str, Any]:
            node = self.before.entitlements[eid]
            return {"entitlement": {"id": eid, "name": node.name,
                                    "application_id": node.application_id}}

        return {
            "role": self.role,
            "policy_version": self.before.version,
            "proposed_policy_version": self.after.version,
            "holders": self.holders,
            "changes": [{"identity_id": c.identity_id, "display_name": c.display_name,
                         "gains": [ent(e) for e in c.gains],
                         "losses": [ent(e) for e in c.losses]} for c in self.changes],
            "new_sod_violations": [
                {"identity_id": v.identity_id, "display_name": v.display_name,
                 "rule": {"id": v.violation.rule.id, "name": v.violation.rule.name,
                          "severity": v.violation.rule.severity},
                 "explanation": v.violation.explanation(),
                 "mitigated": v.violation.mitigated}
                for v in self.new_violations],
            "operations_expected": self.operations_expected,
        }


def _check(session: Session, *, role_id: uuid.UUID, proposal: RoleImpactIn,
           before: PolicySnapshot) -> None:
    """Unknown ids, links already there, links to end that are not: 422, all at once;
    an inclusion that would close a cycle: 422 naming it."""
    now = before.as_of
    errors = ErrorList()
    for i, eid in enumerate(proposal.add_entitlements):
        if eid not in before.entitlements:
            errors.add(f"add_entitlements.{i}", f"no entitlement {eid}")
        elif repository.open_role_entitlement(session, role_id, eid, now) is not None:
            errors.add(f"add_entitlements.{i}", "the role already grants this entitlement")
    for i, eid in enumerate(proposal.end_entitlements):
        if repository.open_role_entitlement(session, role_id, eid, now) is None:
            errors.add(f"end_entitlements.{i}", f"the role does not grant entitlement {eid}")
    for i, rid in enumerate(proposal.include_roles):
        if rid not in before.roles:
            errors.add(f"include_roles.{i}", f"no role {rid}")
        elif repository.open_inclusion(session, role_id, rid, now) is not None:
            errors.add(f"include_roles.{i}", "the role already includes this role")
    for i, rid in enumerate(proposal.end_inclusions):
        if repository.open_inclusion(session, role_id, rid, now) is None:
            errors.add(f"end_inclusions.{i}", f"the role does not include role {rid}")
    errors.raise_if_any("the proposed change is invalid")
    edges = repository.open_inclusion_edges(session, now)
    for i, rid in enumerate(proposal.include_roles):
        cycle = find_cycle(edges, (role_id, rid))
        if cycle is not None:
            names = repository.role_names(session, cycle)
            error = CycleError([names.get(r, str(r)) for r in cycle])
            error.errors = [type(e)(f"include_roles.{i}", e.message) for e in error.errors]
            raise error
        edges.append((role_id, rid))


def _holder_assignments(session: Session, roles: set[uuid.UUID], now: Any
                        ) -> dict[uuid.UUID, list[AssignmentRef]]:
    holders = select(Assignment.identity_id).where(in_force(now), Assignment.role_id.in_(roles))
    rows = session.execute(
        select(Assignment.identity_id, Assignment.id, Assignment.source, Assignment.role_id,
               Assignment.entitlement_id)
        .where(in_force(now), Assignment.identity_id.in_(holders)))
    found: dict[uuid.UUID, list[AssignmentRef]] = {}
    for identity_id, aid, source, rid, eid in rows:
        found.setdefault(identity_id, []).append(
            AssignmentRef(id=aid, source=source, role_id=rid, entitlement_id=eid))
    return found


def _exceptions(session: Session, identity_ids: Iterable[uuid.UUID], now: Any
                ) -> dict[uuid.UUID, list[ExceptionRef]]:
    wanted = list(identity_ids)
    found: dict[uuid.UUID, list[ExceptionRef]] = {}
    for start in range(0, len(wanted), 1000):
        stmt = select(SodException).where(SodException.identity_id.in_(wanted[start:start + 1000]),
                                          SodException.revoked_at.is_(None),
                                          SodException.expires_at > now)
        for exc in session.scalars(stmt):
            found.setdefault(exc.identity_id, []).append(
                ExceptionRef(id=exc.id, rule_id=exc.rule_id, expires_at=exc.expires_at,
                             control=exc.control))
    return found


def _names(session: Session, identity_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = list(identity_ids)
    found: dict[uuid.UUID, str] = {}
    for start in range(0, len(wanted), 1000):
        found.update({i: n for i, n in session.execute(
            select(Identity.id, Identity.display_name)
            .where(Identity.id.in_(wanted[start:start + 1000])))})
    return found


def preview(session: Session, *, role_id: uuid.UUID, proposal: RoleImpactIn,
            clock: Clock) -> Impact:
    """What saving ``proposal`` now would change for every holder of ``role_id``."""
    role = get_role(session, role_id=role_id)
    before = current_snapshot(session, at=clock.now())
    _check(session, role_id=role.id, proposal=proposal, before=before)
    after = apply_proposal(before, role_id=role.id,
                           add_entitlements=proposal.add_entitlements,
                           end_entitlements=proposal.end_entitlements,
                           include_roles=proposal.include_roles,
                           end_inclusions=proposal.end_inclusions)
    held = _holder_assignments(session, ancestors(before, role.id), before.as_of)
    exceptions = _exceptions(session, held, before.as_of)
    names = _names(session, held)
    changes: list[HolderChange] = []
    violations: list[NewViolation] = []
    for identity_id, refs in held.items():
        had = effective_access(before, refs)
        has = effective_access(after, refs)
        gains = has.entitlements.keys() - had.entitlements.keys()
        losses = had.entitlements.keys() - has.entitlements.keys()
        name = names.get(identity_id, str(identity_id))
        if gains or losses:
            changes.append(HolderChange(
                identity_id, name,
                gains=tuple(sorted(gains, key=lambda e: (before.entitlement_name(e), str(e)))),
                losses=tuple(sorted(losses,
                                    key=lambda e: (before.entitlement_name(e), str(e))))))
        mine = exceptions.get(identity_id, [])
        broken_before = {v.rule.id for v in evaluate_sod(before, had, mine)}
        for v in evaluate_sod(after, has, mine):
            if v.rule.id not in broken_before:
                violations.append(NewViolation(identity_id, name, v))
    changes.sort(key=lambda c: (c.display_name, str(c.identity_id)))
    violations.sort(key=lambda v: (v.display_name, str(v.identity_id), v.violation.rule.name))
    return Impact(role=role, before=before, after=after, holders=len(held),
                  changes=changes, new_violations=violations)
