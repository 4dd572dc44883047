"""Protected access: what a certification revoke never removes by itself (it escalates).

An assignment is protected when revoking it would take away, from its identity:

- **the last owner or administrator of an application**: a *privileged* entitlement
  (``Entitlement.privileged``) of an application that no other assignment of the identity
  still gives, where the identity is the application's owner (``Application.owner_id``), or
  where nobody else holds that privileged entitlement (directly or through a role, as in
  force now);
- **a break-glass account**: the identity itself is marked break-glass
  (``Identity.attributes["break_glass"]`` true), or it has an account in an application the
  assignment reaches whose attributes mark it break-glass (``Account.attributes
  ["break_glass"]`` true, or ``Account.attributes["purpose"] == "break-glass"``).

Role assignments are judged over the entitlements the role gives now (its closure). An
assignment that has already ended is never protected: there is nothing left to remove.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from idgov.assignments.repository import in_force
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, RoleEntitlement, RoleInclusion
from idgov.models.identity import Identity
from idgov.provisioning.repository import assignment_entitlements

BREAK_GLASS_PURPOSE = "break-glass"


def _valid_at(model: Any, at: datetime) -> Any:
    return (model.valid_from <= at) & (or_(model.valid_until.is_(None), model.valid_until > at))


def marks_break_glass(attributes: dict[str, Any] | None) -> bool:
    """Whether an identity's or an account's attributes mark it break-glass."""
    found = attributes or {}
    flag = found.get("break_glass")
    return flag is True or str(flag).lower() in ("true", "yes", "1") or \
        found.get("purpose") == BREAK_GLASS_PURPOSE


def _others_hold(session: Session, *, entitlement_id: uuid.UUID, identity_id: uuid.UUID,
                 at: datetime) -> bool:
    """Whether anyone but ``identity_id`` holds the entitlement at ``at`` (directly, or
    through a role that gives it, or a role that includes such a role)."""
    direct = exists().where(Assignment.entitlement_id == entitlement_id,
                            Assignment.identity_id != identity_id, in_force(at))
    if session.scalar(select(direct)):
        return True
    givers = select(RoleEntitlement.role_id.label("role_id")).where(
        RoleEntitlement.entitlement_id == entitlement_id, _valid_at(RoleEntitlement, at)
    ).cte("givers", recursive=True)
    givers = givers.union(
        select(RoleInclusion.parent_role_id)
        .join(givers, RoleInclusion.child_role_id == givers.c.role_id)
        .where(_valid_at(RoleInclusion, at)))
    via_role = exists().where(Assignment.role_id.in_(select(givers.c.role_id)),
                              Assignment.identity_id != identity_id, in_force(at))
    return bool(session.scalar(select(via_role)))


def protection_reason(session: Session, *, assignment: Assignment, at: datetime) -> str | None:
    """Why revoking ``assignment`` at ``at`` must be escalated instead, or None when it may
    be revoked (see the module doc for the rule)."""
    if assignment.revoked_at is not None or (
            assignment.valid_until is not None and assignment.valid_until <= at):
        return None
    identity = session.get(Identity, assignment.identity_id)
    if identity is not None and marks_break_glass(identity.attributes):
        return "break-glass account: the identity is marked break-glass"
    rows = assignment_entitlements(session, assignment=assignment, links_at=at, others_at=at)
    applications = {a for _e, a, _x in rows}
    if applications:
        accounts = session.scalars(select(Account).where(
            Account.identity_id == assignment.identity_id,
            Account.application_id.in_(applications), Account.status != "deleted"))
        for account in accounts:
            if marks_break_glass(account.attributes):
                return f"break-glass account {account.username or account.native_id}"
    lost = [e for e, _a, elsewhere in rows if not elsewhere]
    if not lost:
        return None
    privileged = session.execute(
        select(Entitlement.id, Entitlement.name, Application.name, Application.owner_id)
        .join(Application, Application.id == Entitlement.application_id)
        .where(Entitlement.id.in_(lost), Entitlement.privileged.is_(True))
        .order_by(Entitlement.name))
    for entitlement_id, name, app_name, owner_id in privileged:
        if owner_id == assignment.identity_id:
            return f"owner of {app_name} holding the privileged entitlement {name}"
        if not _others_hold(session, entitlement_id=entitlement_id,
                            identity_id=assignment.identity_id, at=at):
            return f"last holder of the privileged entitlement {name} of {app_name}"
    return None
