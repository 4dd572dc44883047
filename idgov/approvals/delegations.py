"""Delegations (an approver lets a colleague decide for them, for a date range and up to a
risk level) and delegated authority levels (who may approve an urgent line alone)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.approvals import repository
from idgov.approvals.schemas import DelegationCreate, DelegationFilter
from idgov.audit.service import record, snapshot
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from idgov.models.identity import Identity
from idgov.models.requests import ApprovalAuthority, Delegation
from idgov.notifications.service import notify
from idgov.types import Actor


def authority_of(session: Session, person_id: uuid.UUID) -> ApprovalAuthority | None:
    """The person's delegated authority level, if they hold one."""
    return session.scalars(
        select(ApprovalAuthority).where(ApprovalAuthority.identity_id == person_id)).first()

# Delegations --------------------------------------------------------------------------------


def create_delegation(session: Session, *, delegator_id: uuid.UUID,
                      delegation_in: DelegationCreate, actor: Actor,
                      clock: Clock) -> Delegation:
    """``delegator_id`` lets the delegate decide their approvals from ``starts_at`` (default
    now) until ``ends_at``, for lines up to ``max_risk``."""
    now = clock.now()
    starts_at = delegation_in.starts_at or now
    errors: list[FieldError] = []
    if delegation_in.delegate_id == delegator_id:
        errors.append(FieldError("delegate_id", "you cannot delegate to yourself"))
    else:
        delegate = session.get(Identity, delegation_in.delegate_id)
        if delegate is None:
            errors.append(FieldError("delegate_id", f"no identity {delegation_in.delegate_id}"))
        elif delegate.lifecycle_state != "active":
            errors.append(FieldError("delegate_id", "the delegate is not an active person"))
    if delegation_in.ends_at <= starts_at:
        errors.append(FieldError("ends_at", "must be after starts_at"))
    elif delegation_in.ends_at <= now:
        errors.append(FieldError("ends_at", "must be in the future"))
    if errors:
        raise InvalidInput("the delegation is invalid", errors=errors)
    delegation = Delegation(
        delegator_id=delegator_id, delegate_id=delegation_in.delegate_id, starts_at=starts_at,
        ends_at=delegation_in.ends_at, max_risk=delegation_in.max_risk,
        reason=delegation_in.reason, created_at=now, updated_at=now)
    session.add(delegation)
    session.flush()
    record(session, actor=actor, action="delegation.create", object_type="delegation",
           object_id=delegation.id, clock=clock, after=snapshot(delegation))
    delegator = session.get(Identity, delegator_id)
    name = delegator.display_name if delegator is not None else str(delegator_id)
    notify(session, recipient_id=delegation.delegate_id, kind="delegation.created",
           subject=f"{name} delegated their approvals to you",
           body=(f"From {starts_at.isoformat()} until {delegation.ends_at.isoformat()} you may "
                 f"decide {name}'s approvals for lines of risk up to {delegation.max_risk}."),
           object_type="delegation", object_id=str(delegation.id),
           dedupe_key=f"delegation.created:{delegation.id}", clock=clock)
    return delegation


def list_delegations(session: Session, *, caller: Caller, filters: DelegationFilter,
                     clock: Clock) -> Page[Delegation]:
    """Readers: all; a person: the delegations they gave or received."""
    stmt = repository.delegation_list_query(filters, now=clock.now())
    if not caller.can("delegations:read"):
        if caller.identity_id is None:
            return Page(items=[], next_cursor=None)
        stmt = stmt.where((Delegation.delegator_id == caller.identity_id)
                          | (Delegation.delegate_id == caller.identity_id))
    return paginate(session, stmt, Delegation, limit=filters.limit, cursor=filters.cursor)


def revoke_delegation(session: Session, *, delegation_id: uuid.UUID, caller: Caller,
                      clock: Clock) -> Delegation:
    """End a delegation now; only its delegator may. Unknown or not theirs to see: 404; the
    delegate's: 403; already revoked or ended: 409."""
    delegation = get_or_404(session, Delegation, delegation_id, what="delegation")
    person = caller.identity_id
    if person not in (delegation.delegator_id, delegation.delegate_id):
        raise NotFound(f"delegation {delegation_id} does not exist")
    if person != delegation.delegator_id:
        raise Forbidden("only the person who delegated may revoke a delegation")
    now = clock.now()
    if delegation.revoked_at is not None:
        raise Conflict(f"delegation {delegation_id} was already revoked", state="revoked")
    if delegation.ends_at <= now:
        raise Conflict(f"delegation {delegation_id} already ended", state="ended")
    before = snapshot(delegation)
    delegation.revoked_at = now
    delegation.updated_at = now
    session.flush()
    record(session, actor=caller.actor, action="delegation.revoke", object_type="delegation",
           object_id=delegation.id, clock=clock, before=before, after=snapshot(delegation))
    return delegation


# Authority levels ---------------------------------------------------------------------------


def set_authority(session: Session, *, identity_id: uuid.UUID, max_risk: str, actor: Actor,
                  clock: Clock) -> ApprovalAuthority:
    """Give (or change) a person's delegated authority level."""
    get_or_404(session, Identity, identity_id, what="identity")
    now = clock.now()
    authority = authority_of(session, identity_id)
    before = snapshot(authority) if authority is not None else None
    if authority is None:
        authority = ApprovalAuthority(identity_id=identity_id, max_risk=max_risk,
                                      granted_by=actor.label, created_at=now, updated_at=now)
        session.add(authority)
    else:
        authority.max_risk = max_risk
        authority.granted_by = actor.label
        authority.updated_at = now
    session.flush()
    record(session, actor=actor, action="approval_authority.set",
           object_type="approval_authority", object_id=authority.id, clock=clock,
           before=before, after=snapshot(authority),
           context={"identity_id": str(identity_id)})
    return authority


def list_authorities(session: Session, *, limit: int | None,
                     cursor: str | None) -> Page[ApprovalAuthority]:
    return paginate(session, select(ApprovalAuthority), ApprovalAuthority, limit=limit,
                    cursor=cursor)


def remove_authority(session: Session, *, identity_id: uuid.UUID, actor: Actor,
                     clock: Clock) -> None:
    authority = authority_of(session, identity_id)
    if authority is None:
        raise NotFound(f"identity {identity_id} has no approval authority")
    before = snapshot(authority)
    session.delete(authority)
    session.flush()
    record(session, actor=actor, action="approval_authority.remove",
           object_type="approval_authority", object_id=authority.id, clock=clock,
           before=before, context={"identity_id": str(identity_id)})
