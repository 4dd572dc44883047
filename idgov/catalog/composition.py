"""Role composition: role -> included role and role -> entitlement links.

A change propagates: in the same transaction, every holder of the role (through an
assignment in force of it or of a role that includes it) gets the provisioning operations
for the entitlements the change makes them gain or lose (``idgov.provisioning``), and the
audit event of the change carries the impact counts in its context. ``POST
/roles/{id}/impact`` previews the same thing without saving it.

Links are end-dated with a reason, never deleted, so the access of any past instant can be
rebuilt. A link may be scheduled to start later but never back-dated: that would claim access
existed when it did not. Inclusion stays a DAG: a link that would close a cycle is refused
with the cycle spelt out in role names. Every change takes one transaction-scoped lock so two
concurrent changes cannot each pass the cycle check and together make a cycle.

A role composition review (certification) records its confirmation of a link with
:func:`certify_link` (last certified at / by) and removes a link with the same
:func:`end_entitlement` / :func:`end_inclusion` as an administrator.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from idgov.audit.service import record, snapshot
from idgov.catalog import repository
from idgov.catalog.schemas import InclusionCreate, RoleEntitlementCreate
from idgov.catalog.service import get_role
from idgov.clock import Clock
from idgov.db.repository import require_exists
from idgov.errors import Conflict, CycleError, FieldError, InvalidInput, NotFound
from idgov.models.catalog import Entitlement, Role, RoleEntitlement, RoleInclusion
from idgov.policy.expansion import find_cycle
from idgov.provisioning.service import HolderState, capture_holders, record_catalog_change
from idgov.types import Actor


def _start(valid_from: datetime | None, now: datetime) -> datetime:
    if valid_from is None:
        return now
    if valid_from < now:
        raise InvalidInput("valid_from cannot be in the past: history is not rewritten",
                           errors=[FieldError("valid_from", "must be now or later")])
    return valid_from


def include_role(session: Session, *, role_id: uuid.UUID, inclusion_in: InclusionCreate,
                 actor: Actor, clock: Clock) -> RoleInclusion:
    """Make ``role_id`` include another role from ``valid_from`` (default now).

    Raises Conflict when the link is already open (active or scheduled) and CycleError when
    the included role already reaches ``role_id``.
    """
    parent = get_role(session, role_id=role_id)
    child_id = inclusion_in.role_id
    require_exists(session, Role, child_id, "role_id")
    now = clock.now()
    start = _start(inclusion_in.valid_from, now)
    repository.lock_composition(session)
    if repository.open_inclusion(session, parent.id, child_id, now) is not None:
        raise Conflict(f"role {parent.name!r} already includes role {child_id}",
                       field="role_id")
    cycle = find_cycle(repository.open_inclusion_edges(session, now), (parent.id, child_id))
    if cycle is not None:
        names = repository.role_names(session, cycle)
        raise CycleError([names.get(r, str(r)) for r in cycle])
    holders = capture_holders(session, role_id=parent.id, included_role_id=child_id,
                              clock=clock)
    link = RoleInclusion(parent_role_id=parent.id, child_role_id=child_id, valid_from=start)
    _open_link(session, link, action="role.include_role", role_id=parent.id, holders=holders,
               actor=actor, clock=clock)
    return link


def end_inclusion(session: Session, *, role_id: uuid.UUID, child_role_id: uuid.UUID,
                  reason: str, actor: Actor, clock: Clock) -> RoleInclusion:
    """End-date the open link from ``role_id`` to ``child_role_id`` with ``reason``."""
    parent = get_role(session, role_id=role_id)
    now = clock.now()
    repository.lock_composition(session)
    link = repository.open_inclusion(session, parent.id, child_role_id, now)
    if link is None:
        raise NotFound(f"role {parent.name!r} does not include role {child_role_id}")
    holders = capture_holders(session, role_id=parent.id, included_role_id=child_role_id,
                              clock=clock)
    _end_link(session, link, reason=reason, action="role.end_inclusion", role_id=parent.id,
              holders=holders, actor=actor, clock=clock)
    return link


def add_entitlement(session: Session, *, role_id: uuid.UUID, link_in: RoleEntitlementCreate,
                    actor: Actor, clock: Clock) -> RoleEntitlement:
    """Make ``role_id`` grant an entitlement from ``valid_from`` (default now)."""
    role = get_role(session, role_id=role_id)
    require_exists(session, Entitlement, link_in.entitlement_id, "entitlement_id")
    now = clock.now()
    start = _start(link_in.valid_from, now)
    repository.lock_composition(session)
    if repository.open_role_entitlement(session, role.id, link_in.entitlement_id,
                                        now) is not None:
        raise Conflict(f"role {role.name!r} already grants entitlement "
                       f"{link_in.entitlement_id}", field="entitlement_id")
    holders = capture_holders(session, role_id=role.id, entitlement_id=link_in.entitlement_id,
                              clock=clock)
    link = RoleEntitlement(role_id=role.id, entitlement_id=link_in.entitlement_id,
                           valid_from=start)
    _open_link(session, link, action="role.add_entitlement", role_id=role.id, holders=holders,
               actor=actor, clock=clock)
    return link


def end_entitlement(session: Session, *, role_id: uuid.UUID, entitlement_id: uuid.UUID,
                    reason: str, actor: Actor, clock: Clock) -> RoleEntitlement:
    """End-date the open link from ``role_id`` to ``entitlement_id`` with ``reason``."""
    role = get_role(session, role_id=role_id)
    now = clock.now()
    repository.lock_composition(session)
    link = repository.open_role_entitlement(session, role.id, entitlement_id, now)
    if link is None:
        raise NotFound(f"role {role.name!r} does not grant entitlement {entitlement_id}")
    holders = capture_holders(session, role_id=role.id, entitlement_id=entitlement_id,
                              clock=clock)
    _end_link(session, link, reason=reason, action="role.end_entitlement", role_id=role.id,
              holders=holders, actor=actor, clock=clock)
    return link


def _open_link(session: Session, link: RoleInclusion | RoleEntitlement, *, action: str,
               role_id: uuid.UUID, holders: HolderState, actor: Actor, clock: Clock) -> None:
    """Save a new composition link, record its holders' provisioning operations, audit it
    with the impact counts."""
    session.add(link)
    session.flush()
    impact = record_catalog_change(session, state=holders, link_id=link.id, actor=actor,
                                   clock=clock)
    record(session, actor=actor, action=action, object_type="role", object_id=role_id,
           clock=clock, after=snapshot(link), context={"impact": impact.counts()})


def _end_link(session: Session, link: RoleInclusion | RoleEntitlement, *, reason: str,
              action: str, role_id: uuid.UUID, holders: HolderState, actor: Actor,
              clock: Clock) -> None:
    """End-date a composition link now, keeping the row as history, record the holders'
    provisioning operations, and audit it with the impact counts."""
    before = snapshot(link)
    # A link scheduled for later ends before it starts: an empty window, kept as history.
    link.valid_until = max(clock.now(), link.valid_from)
    link.end_reason = reason
    session.flush()
    impact = record_catalog_change(session, state=holders, link_id=link.id, actor=actor,
                                   clock=clock)
    record(session, actor=actor, action=action, object_type="role", object_id=role_id,
           clock=clock, before=before, after=snapshot(link),
           context={"reason": reason, "impact": impact.counts()})


def certify_link(session: Session, *, role_entitlement_id: uuid.UUID | None = None,
                 role_inclusion_id: uuid.UUID | None = None, at: datetime, by: str,
                 actor: Actor, clock: Clock) -> RoleEntitlement | RoleInclusion:
    """Record that a reviewer confirmed one composition link (called by certification):
    its ``last_certified_at`` / ``last_certified_by``. Exactly one of the two link ids;
    NotFound for an unknown link. The link's validity is not touched (an ended link keeps
    its history and gets the record of the review that looked at it).

    Audit: ``role.certify_entitlement`` or ``role.certify_inclusion`` (object ``role``, the
    role whose composition it is), like the other composition changes."""
    if (role_entitlement_id is None) == (role_inclusion_id is None):
        raise ValueError("give exactly one of role_entitlement_id and role_inclusion_id")
    link: RoleEntitlement | RoleInclusion | None
    if role_entitlement_id is not None:
        link = session.get(RoleEntitlement, role_entitlement_id)
        action = "role.certify_entitlement"
    else:
        link = session.get(RoleInclusion, role_inclusion_id)
        action = "role.certify_inclusion"
    if link is None:
        raise NotFound(f"no role composition link {role_entitlement_id or role_inclusion_id}")
    role_id = link.role_id if isinstance(link, RoleEntitlement) else link.parent_role_id
    before = snapshot(link)
    link.last_certified_at = at
    link.last_certified_by = by[:400]
    session.flush()
    record(session, actor=actor, action=action, object_type="role", object_id=role_id,
           clock=clock, before=before, after=snapshot(link))
    return link
