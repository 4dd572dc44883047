"""Entitlements and roles: create, change, retire, delete. Services flush, audit, never commit.

Deleting is for mistakes only. A role or entitlement that was ever assigned, composed into a
role or named by an SoD rule carries history that reconstructs past access, so deleting it
is refused (409) and the way out is retirement: ``requestable=false`` takes it out of the
catalog while existing grants keep being explained, and end-dating its links removes it from
roles. Active assignments are reported first, with their count.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes, record, snapshot
from idgov.catalog import repository
from idgov.catalog.schemas import (
    EntitlementCreate,
    EntitlementFilter,
    EntitlementUpdate,
    RoleCreate,
    RoleFilter,
    RoleUpdate,
)
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate, require_exists
from idgov.errors import Conflict, FieldError, InUse, InvalidInput
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import (
    Entitlement,
    Role,
    RoleEntitlement,
    RoleInclusion,
    SodRuleItem,
)
from idgov.models.identity import Identity
from idgov.types import Actor


def _refuse_nulls(changes: dict[str, Any], fields: tuple[str, ...]) -> None:
    bad = [f for f in fields if f in changes and changes[f] is None]
    if bad:
        raise InvalidInput("these fields cannot be null",
                           errors=[FieldError(f, "cannot be null") for f in bad])


def _refuse_deletion(session: Session, *, what: str, label: str, object_id: uuid.UUID,
                     assignment_column: Any, links: int, sod_column: Any,
                     clock: Clock) -> None:
    active, total = repository.assignment_counts(session, column=assignment_column,
                                                 object_id=object_id, now=clock.now())
    if active:
        raise InUse(f"{what} {label!r} is held by {active} active assignment(s): revoke them, "
                    f"or retire it with requestable=false", active_assignments=active)
    sod_items = repository.sod_item_count(session, column=sod_column, object_id=object_id)
    if total or links or sod_items:
        raise InUse(
            f"{what} {label!r} has history ({total} assignment(s), {links} composition "
            f"link(s), {sod_items} SoD rule item(s)) that must stay to reconstruct past "
            f"access: retire it with requestable=false instead",
            active_assignments=0, assignments=total, composition_links=links,
            sod_rule_items=sod_items,
        )


# --- entitlements ---------------------------------------------------------------------------


def list_entitlements(session: Session, *, filters: EntitlementFilter) -> Page[Entitlement]:
    """Entitlements matching ``filters``, one keyset page."""
    return paginate(session, repository.entitlement_list_query(filters), Entitlement,
                    limit=filters.limit, cursor=filters.cursor)


def get_entitlement(session: Session, *, entitlement_id: uuid.UUID) -> Entitlement:
    """One entitlement, or NotFound."""
    return get_or_404(session, Entitlement, entitlement_id, what="entitlement")


def _check_native_id(session: Session, application_id: uuid.UUID, native_id: str,
                     exclude: uuid.UUID | None) -> None:
    if repository.native_id_taken(session, application_id, native_id, exclude):
        raise Conflict(f"application {application_id} already has an entitlement with "
                       f"native_id {native_id!r}", field="native_id")


def create_entitlement(session: Session, *, entitlement_in: EntitlementCreate, actor: Actor,
                       clock: Clock) -> Entitlement:
    """Add an entitlement of an existing application; its native id is unique there."""
    require_exists(session, Application, entitlement_in.application_id, "application_id")
    require_exists(session, Identity, entitlement_in.owner_id, "owner_id")
    _check_native_id(session, entitlement_in.application_id, entitlement_in.native_id, None)
    entitlement = Entitlement(**entitlement_in.model_dump())
    entitlement.created_at = entitlement.updated_at = clock.now()
    session.add(entitlement)
    session.flush()
    record(session, actor=actor, action="entitlement.create", object_type="entitlement",
           object_id=entitlement.id, clock=clock, after=snapshot(entitlement))
    return entitlement


def update_entitlement(session: Session, *, entitlement_id: uuid.UUID,
                       entitlement_in: EntitlementUpdate, actor: Actor,
                       clock: Clock) -> Entitlement:
    """Change the given fields of an entitlement."""
    entitlement = get_entitlement(session, entitlement_id=entitlement_id)
    changes = entitlement_in.model_dump(exclude_unset=True)
    _refuse_nulls(changes, ("native_id", "name", "kind", "risk", "privileged",
                            "data_classification", "requestable"))
    if "owner_id" in changes:
        require_exists(session, Identity, changes["owner_id"], "owner_id")
    if changes.get("native_id") not in (None, entitlement.native_id):
        _check_native_id(session, entitlement.application_id, changes["native_id"],
                         entitlement.id)
    apply_changes(session, entitlement, changes, action="entitlement.update",
                  object_type="entitlement", actor=actor, clock=clock)
    return entitlement


def delete_entitlement(session: Session, *, entitlement_id: uuid.UUID, actor: Actor,
                       clock: Clock) -> None:
    """Delete an entitlement that was never used; otherwise InUse (retire it instead)."""
    entitlement = get_entitlement(session, entitlement_id=entitlement_id)
    _refuse_deletion(session, what="entitlement", label=entitlement.name,
                     object_id=entitlement.id, assignment_column=Assignment.entitlement_id,
                     links=repository.link_count_for_entitlement(session, entitlement.id),
                     sod_column=SodRuleItem.entitlement_id, clock=clock)
    before = snapshot(entitlement)
    session.delete(entitlement)
    session.flush()
    record(session, actor=actor, action="entitlement.delete", object_type="entitlement",
           object_id=entitlement_id, clock=clock, before=before)


# --- roles ------------------------------------------------------------------------------------


def list_roles(session: Session, *, filters: RoleFilter) -> Page[Role]:
    """Roles matching ``filters``, one keyset page."""
    return paginate(session, repository.role_list_query(filters), Role,
                    limit=filters.limit, cursor=filters.cursor)


def get_role(session: Session, *, role_id: uuid.UUID) -> Role:
    """One role, or NotFound."""
    return get_or_404(session, Role, role_id, what="role")


def get_role_detail(session: Session, *, role_id: uuid.UUID, clock: Clock
                    ) -> tuple[Role, list[tuple[RoleInclusion, Role]],
                               list[tuple[RoleEntitlement, Entitlement]]]:
    """A role with the roles and entitlements it includes now (links valid at this instant)."""
    role = get_role(session, role_id=role_id)
    now = clock.now()
    return (role, repository.included_roles_at(session, role.id, now),
            repository.entitlements_at(session, role.id, now))


def _check_role_name(session: Session, name: str, exclude: uuid.UUID | None) -> None:
    if repository.name_taken(session, Role, name, exclude):
        raise Conflict(f"a role named {name!r} already exists", field="name")


def create_role(session: Session, *, role_in: RoleCreate, actor: Actor, clock: Clock) -> Role:
    """Add a role; its name is unique (case-insensitively)."""
    _check_role_name(session, role_in.name, None)
    require_exists(session, Identity, role_in.owner_id, "owner_id")
    role = Role(**role_in.model_dump())
    role.created_at = role.updated_at = clock.now()
    session.add(role)
    session.flush()
    record(session, actor=actor, action="role.create", object_type="role", object_id=role.id,
           clock=clock, after=snapshot(role))
    return role


def update_role(session: Session, *, role_id: uuid.UUID, role_in: RoleUpdate, actor: Actor,
                clock: Clock) -> Role:
    """Change the given fields of a role (``requestable=false`` retires it)."""
    role = get_role(session, role_id=role_id)
    changes = role_in.model_dump(exclude_unset=True)
    _refuse_nulls(changes, ("name", "kind", "requestable"))
    if changes.get("name") is not None:
        _check_role_name(session, changes["name"], role.id)
    if "owner_id" in changes:
        require_exists(session, Identity, changes["owner_id"], "owner_id")
    apply_changes(session, role, changes, action="role.update",
                  object_type="role", actor=actor, clock=clock)
    return role


def delete_role(session: Session, *, role_id: uuid.UUID, actor: Actor, clock: Clock) -> None:
    """Delete a role that was never used; otherwise InUse (retire it instead)."""
    role = get_role(session, role_id=role_id)
    _refuse_deletion(session, what="role", label=role.name, object_id=role.id,
                     assignment_column=Assignment.role_id,
                     links=repository.link_counts_for_role(session, role.id),
                     sod_column=SodRuleItem.role_id, clock=clock)
    before = snapshot(role)
    session.delete(role)
    session.flush()
    record(session, actor=actor, action="role.delete", object_type="role", object_id=role_id,
           clock=clock, before=before)
