"""Effective access: load the identity's assignments and the policy snapshot, explain them.

The service loads (assignments and exceptions in force at the instant, the snapshot of the
catalog at that instant) and hands them to the pure policy functions; the answer is theirs.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from idgov.access import repository
from idgov.access.schemas import (
    AccessRead,
    EntitlementAccess,
    GrantOut,
    HeldItemOut,
    PathStepOut,
    RoleAccess,
    SodExceptionRef,
    SodRuleRef,
    SodViolationOut,
)
from idgov.auth.caller import Caller
from idgov.catalog.schemas import EntitlementSummary, RoleSummary
from idgov.catalog.snapshot import current_snapshot
from idgov.clock import Clock
from idgov.identities.service import get_visible
from idgov.policy.expansion import Grant, effective_access
from idgov.policy.snapshot import PolicySnapshot
from idgov.policy.sod import HeldItem, Violation, evaluate_sod


def _grants(grants: tuple[Grant, ...]) -> list[GrantOut]:
    return [GrantOut(assignment_id=g.assignment_id, source=g.source,
                     path=[PathStepOut(type=s.type, id=s.id, name=s.name) for s in g.path])
            for g in grants]


def _held(items: tuple[HeldItem, ...]) -> list[HeldItemOut]:
    return [HeldItemOut(type=h.item.type, id=h.item.id, name=h.name, grants=_grants(h.grants))
            for h in items]


def _violation(v: Violation) -> SodViolationOut:
    exception = None
    if v.exception is not None:
        exception = SodExceptionRef(id=v.exception.id, expires_at=v.exception.expires_at,
                                    control=v.exception.control)
    return SodViolationOut(
        rule=SodRuleRef(id=v.rule.id, name=v.rule.name, severity=v.rule.severity),
        side_a=_held(v.side_a), side_b=_held(v.side_b), mitigated=v.mitigated,
        exception=exception, explanation=v.explanation())


def _entitlement_summary(snapshot: PolicySnapshot, entitlement_id: uuid.UUID
                         ) -> EntitlementSummary:
    node = snapshot.entitlements[entitlement_id]
    return EntitlementSummary(id=node.id, name=node.name, application_id=node.application_id,
                              native_id=node.native_id, risk=node.risk,
                              privileged=node.privileged)


def _role_summary(snapshot: PolicySnapshot, role_id: uuid.UUID) -> RoleSummary:
    node = snapshot.roles[role_id]
    return RoleSummary(id=node.id, name=node.name, kind=node.kind)


def get_access(session: Session, *, caller: Caller, identity_id: uuid.UUID,
               as_of: datetime | None, clock: Clock) -> AccessRead:
    """What ``identity_id`` holds at ``as_of`` (default now), with every path, and its SoD
    violations. Links and assignments are taken as they were valid at that instant.

    The row rule of identities applies: a caller who may not see the identity gets NotFound.
    """
    identity = get_visible(session, caller=caller, identity_id=identity_id)
    instant = as_of or clock.now()
    snapshot = current_snapshot(session, at=instant)
    access = effective_access(snapshot, repository.assignments_at(session, identity.id,
                                                                  instant))
    violations = evaluate_sod(snapshot, access,
                              repository.exceptions_at(session, identity.id, instant))
    entitlements = sorted(
        (EntitlementAccess(entitlement=_entitlement_summary(snapshot, eid),
                           grants=_grants(grants))
         for eid, grants in access.entitlements.items()),
        key=lambda e: (e.entitlement.name, str(e.entitlement.id)))
    roles = sorted(
        (RoleAccess(role=_role_summary(snapshot, rid), grants=_grants(grants))
         for rid, grants in access.roles.items()),
        key=lambda r: (r.role.name, str(r.role.id)))
    return AccessRead(identity_id=identity.id, as_of=instant, policy_version=snapshot.version,
                      entitlements=entitlements, roles=roles,
                      sod_violations=[_violation(v) for v in violations])
