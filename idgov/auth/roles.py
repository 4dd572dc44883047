"""The service roles of a person: explicit grants plus roles derived from the data.

Explicit roles (administrator, auditor, hr-system) come from ``ServiceRoleGrant`` rows.
Derived roles follow from the data each time a caller is resolved, so they can never go
stale:

- requester: the identity is active;
- manager: at least one identity names this one as its manager;
- owner: the identity owns an application, a role or an entitlement.

Other modules add derived roles through :func:`register_role_source`, so that the core need
not know their tables. The access-requests module registers "approver" (the person has a
waiting approval step) from its composition root::

    from idgov.auth.roles import register_role_source
    register_role_source("approver", lambda session, identity_id: ...)

A source answers yes or no for one identity with one cheap query (an ``EXISTS``). Only the
derived role names of ``idgov.models.auth.DERIVED_SERVICE_ROLES`` may be registered, so that
no module can hand out an explicit role such as administrator by derivation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, aliased

from idgov.models.application import Application
from idgov.models.auth import DERIVED_SERVICE_ROLES, ServiceRoleGrant
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Identity

# (session, identity_id) -> does the person hold the role?
RoleSource = Callable[[Session, uuid.UUID], bool]

# Roles the core derives itself, in the single query of ``service_roles_of``.
BUILTIN_DERIVED = frozenset({"requester", "manager", "owner"})

_SOURCES: dict[str, RoleSource] = {}


def register_role_source(name: str, fn: RoleSource) -> None:
    """Derive the service role ``name`` with ``fn``; registering a name again replaces it."""
    if name not in DERIVED_SERVICE_ROLES or name in BUILTIN_DERIVED:
        raise ValueError(
            f"only the derived roles {sorted(set(DERIVED_SERVICE_ROLES) - BUILTIN_DERIVED)} "
            f"may have a registered source, not {name!r}"
        )
    _SOURCES[name] = fn


def unregister_role_source(name: str) -> None:
    """Forget the source of ``name`` (tests, reloading a module)."""
    _SOURCES.pop(name, None)


def registered_role_sources() -> dict[str, RoleSource]:
    """The registered sources by role name (a copy)."""
    return dict(_SOURCES)


@dataclass(frozen=True)
class PersonRoles:
    """What the data says about one person: their lifecycle state and service roles."""

    identity_id: uuid.UUID
    lifecycle_state: str
    roles: frozenset[str]

    @property
    def active(self) -> bool:
        return self.lifecycle_state == "active"


def person_roles(session: Session, identity_id: uuid.UUID) -> PersonRoles | None:
    """The service roles of the identity ``identity_id``, or None when it does not exist.

    Two queries for the core roles (the facts in one, the explicit grants in another) and
    one per registered source. A person who is not active holds no derived role.
    """
    report = aliased(Identity)
    is_manager = exists().where(report.manager_id == identity_id)
    is_owner = or_(
        exists().where(Application.owner_id == identity_id),
        exists().where(Role.owner_id == identity_id),
        exists().where(Entitlement.owner_id == identity_id),
    )
    row = session.execute(
        select(Identity.lifecycle_state, is_manager, is_owner).where(Identity.id == identity_id)
    ).one_or_none()
    if row is None:
        return None
    state, manages, owns = row
    roles = set(
        session.scalars(
            select(ServiceRoleGrant.role).where(ServiceRoleGrant.identity_id == identity_id)
        )
    )
    if state == "active":
        roles.add("requester")
        if manages:
            roles.add("manager")
        if owns:
            roles.add("owner")
        for name, source in _SOURCES.items():
            if source(session, identity_id):
                roles.add(name)
    return PersonRoles(identity_id=identity_id, lifecycle_state=state, roles=frozenset(roles))


def service_roles_of(session: Session, identity_id: uuid.UUID) -> frozenset[str]:
    """The service roles the identity holds now (empty when it does not exist)."""
    found = person_roles(session, identity_id)
    return frozenset() if found is None else found.roles
