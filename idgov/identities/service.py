"""Identity services: keyword-only functions that flush, audit, and never commit."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes, record, snapshot
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate, require_exists
from idgov.errors import FieldError, InUse, InvalidInput, NotFound
from idgov.identities import repository
from idgov.identities.schemas import IdentityCreate, IdentityFilter, IdentityUpdate
from idgov.models.assignment import Assignment
from idgov.models.identity import Identity
from idgov.provisioning import accounts
from idgov.types import Actor


def can_see(session: Session, *, caller: Caller, identity_id: uuid.UUID) -> bool:
    """Row rule: everyone-readers see all; a person sees themselves and their reports' chain."""
    if caller.can("identities:read"):
        return True
    if caller.identity_id is None:
        return False
    if caller.identity_id == identity_id:
        return True
    return caller.identity_id in repository.manager_chain(session, identity_id)


def get_visible(session: Session, *, caller: Caller, identity_id: uuid.UUID) -> Identity:
    """Load an identity the caller may see; one they may not see does not exist for them."""
    if not can_see(session, caller=caller, identity_id=identity_id):
        raise NotFound(f"identity {identity_id} does not exist")
    return get_or_404(session, Identity, identity_id, what="identity")


def list_identities(session: Session, *, caller: Caller, filters: IdentityFilter,
                    limit: int | None, cursor: str | None) -> Page[Identity]:
    """Identities matching ``filters``; callers without global read see themselves and reports."""
    stmt = repository.list_query(filters)
    if not caller.can("identities:read"):
        if caller.identity_id is None:
            return Page(items=[], next_cursor=None)
        stmt = stmt.where((Identity.id == caller.identity_id)
                          | (Identity.manager_id == caller.identity_id))
    return paginate(session, stmt, Identity, limit=limit, cursor=cursor)


def _check_manager(session: Session, identity_id: uuid.UUID | None,
                   manager_id: uuid.UUID | None) -> None:
    if manager_id is None:
        return
    require_exists(session, Identity, manager_id, "manager_id")
    if identity_id is not None and (
        manager_id == identity_id or identity_id in repository.manager_chain(session, manager_id)
    ):
        raise InvalidInput("an identity cannot manage itself, directly or through others",
                           errors=[FieldError("manager_id", "would create a management loop")])


def _check_unique(session: Session, *, employee_id: str | None, email: str | None,
                  exclude: uuid.UUID | None, user_name: str | None = None) -> None:
    if employee_id is not None and session.scalar(
        select(Identity.id).where(Identity.employee_id == employee_id)
    ) is not None:
        raise InvalidInput("employee_id is taken",
                           errors=[FieldError("employee_id", "already used by another identity")])
    if email and repository.count_by_email(session, email, exclude=exclude):
        raise InvalidInput("email is taken",
                           errors=[FieldError("email", "already used by another identity")])
    taken = select(Identity.id).where(func.lower(Identity.user_name) == (user_name or "").lower())
    if exclude is not None:
        taken = taken.where(Identity.id != exclude)
    if user_name and session.scalar(taken) is not None:
        raise InvalidInput("user_name is taken",
                           errors=[FieldError("user_name", "already used by another identity")])


def create_identity(session: Session, *, identity_in: IdentityCreate, actor: Actor,
                    clock: Clock) -> Identity:
    """Create an identity from its HR record."""
    _check_unique(session, employee_id=identity_in.employee_id, email=identity_in.email,
                  exclude=None, user_name=identity_in.user_name)
    _check_manager(session, None, identity_in.manager_id)
    data = identity_in.model_dump()
    if not data.get("display_name"):
        data["display_name"] = f"{identity_in.given_name} {identity_in.family_name}"
    identity = Identity(**data)
    now = clock.now()
    identity.created_at = identity.updated_at = now
    session.add(identity)
    session.flush()
    record(session, actor=actor, action="identity.create", object_type="identity",
           object_id=identity.id, clock=clock, after=snapshot(identity))
    return identity


def update_identity(session: Session, *, identity_id: uuid.UUID, identity_in: IdentityUpdate,
                    actor: Actor, clock: Clock) -> Identity:
    """Change the given fields of an identity."""
    identity = get_or_404(session, Identity, identity_id, what="identity")
    changes = identity_in.model_dump(exclude_unset=True)
    for required in ("given_name", "family_name", "display_name", "employment_type",
                     "lifecycle_state", "attributes"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null",
                               errors=[FieldError(required, "cannot be null")])
    if changes.get("email") or changes.get("user_name"):
        _check_unique(session, employee_id=None, email=changes.get("email"), exclude=identity_id,
                      user_name=changes.get("user_name"))
    if "manager_id" in changes:
        _check_manager(session, identity_id, changes["manager_id"])
    before = accounts.identity_values(identity)
    apply_changes(session, identity, changes, action="identity.update",
                  object_type="identity", actor=actor, clock=clock)
    # A mapped attribute that changed is pushed to the identity's accounts.
    accounts.push_identity_change(session, identity=identity, before=before, actor=actor,
                                  clock=clock)
    return identity


def delete_identity(session: Session, *, identity_id: uuid.UUID, actor: Actor,
                    clock: Clock) -> None:
    """Delete an identity that holds no assignment (history included); else 409."""
    identity = get_or_404(session, Identity, identity_id, what="identity")
    held = session.scalar(
        select(func.count()).select_from(Assignment).where(Assignment.identity_id == identity_id)
    ) or 0
    if held:
        raise InUse(f"identity holds {held} assignments (history is kept): terminate it instead",
                    assignments=held)
    before = snapshot(identity)
    session.delete(identity)
    session.flush()
    record(session, actor=actor, action="identity.delete", object_type="identity",
           object_id=identity_id, clock=clock, before=before)
