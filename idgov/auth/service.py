"""Resolving the caller of a request, and managing service principals, API tokens and grants.

Token texts and hashes never leave this module except the text, once, to whoever created
the token: audit events carry :func:`token_view`, which has neither.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes, record, snapshot
from idgov.auth import repository, tokens
from idgov.auth.caller import Caller
from idgov.auth.schemas import (
    GrantCreate,
    GrantFilter,
    PrincipalCreate,
    PrincipalFilter,
    PrincipalUpdate,
    TokenCreate,
    TokenFilter,
)
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate, require_exists
from idgov.errors import Conflict, FieldError, InvalidInput, NotFound, Unauthenticated
from idgov.models.auth import SERVICE_ROLES, ApiToken, ServicePrincipal, ServiceRoleGrant
from idgov.models.identity import Identity
from idgov.types import Actor

# Validates an OIDC bearer JWT and returns the caller; installed by the application
# (idgov.auth.oidc.OidcAuthenticator, built from the settings by idgov.auth.oidc.oidc_resolver).
OidcResolver = Callable[[Session, str], Caller]

# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def caller_from_api_token(session: Session, token: str, *, clock: Clock) -> Caller:
    """The caller behind an API token, or Unauthenticated (never saying which check failed)."""
    parts = tokens.split_token(token)
    if parts is None:
        raise Unauthenticated("the bearer token is not valid")
    row = repository.token_by_prefix(session, parts.prefix)
    if row is None or not tokens.matches(token, row.secret_hash):
        raise Unauthenticated("the bearer token is not valid")
    now = clock.now()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthenticated("the bearer token is expired or revoked")
    principal = session.get(ServicePrincipal, row.principal_id)
    if principal is None or principal.disabled:
        raise Unauthenticated("the bearer token is not valid")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        repository.touch_token(session, row.id, now=now, older_than=now - LAST_USED_RESOLUTION)
    roles = frozenset(row.roles) & frozenset(principal.roles)
    return Caller.build(kind="token", name=principal.name, roles=roles,
                        principal_id=principal.id, token_id=row.id)


def resolve_caller(session: Session, authorization: str | None, *, clock: Clock,
                   oidc: OidcResolver | None) -> Caller:
    """Authenticate an ``Authorization: Bearer ...`` header: an API token or an OIDC JWT."""
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer header is required")
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Unauthenticated("an Authorization: Bearer header is required")
    if credential.startswith(f"{tokens.TOKEN_PREFIX}_"):
        return caller_from_api_token(session, credential, clock=clock)
    if oidc is None:
        raise Unauthenticated("the bearer token is not valid")
    return oidc(session, credential)


def describe_caller(session: Session, *, caller: Caller) -> dict[str, Any]:
    """Who the caller is: name, kind, identity, roles and capabilities (for ``GET /me``)."""
    identity = None
    if caller.identity_id is not None:
        identity = session.get(Identity, caller.identity_id)
    return {
        "kind": caller.kind,
        "name": caller.name,
        "identity": identity,
        "principal_id": caller.principal_id,
        "roles": sorted(caller.roles),
        "capabilities": sorted(caller.capabilities),
    }


# Service principals -------------------------------------------------------------------------


def _check_roles(roles: list[str]) -> None:
    bad = [r for r in roles if r not in SERVICE_ROLES]
    if bad:
        raise InvalidInput(
            "unknown service role",
            errors=[FieldError("roles", f"unknown service role {r!r}") for r in bad],
        )


def ensure_principal(session: Session, *, name: str, roles: list[str], actor: Actor,
                     clock: Clock, description: str | None = None) -> ServicePrincipal:
    """The service principal ``name``, created with ``roles`` if it does not exist."""
    _check_roles(roles)
    principal = repository.principal_by_name(session, name)
    if principal is not None:
        return principal
    principal = ServicePrincipal(name=name, roles=sorted(set(roles)), description=description,
                                 disabled=False)
    principal.created_at = principal.updated_at = clock.now()
    session.add(principal)
    session.flush()
    record(session, actor=actor, action="service_principal.create",
           object_type="service_principal", object_id=principal.id, clock=clock,
           after=snapshot(principal))
    return principal


def create_principal(session: Session, *, principal_in: PrincipalCreate, actor: Actor,
                     clock: Clock) -> ServicePrincipal:
    """Create a service principal; a taken name is a conflict."""
    if repository.principal_by_name(session, principal_in.name) is not None:
        raise Conflict(f"a service principal named {principal_in.name!r} exists")
    return ensure_principal(session, name=principal_in.name, roles=list(principal_in.roles),
                            description=principal_in.description, actor=actor, clock=clock)


def get_principal(session: Session, *, principal_id: uuid.UUID) -> ServicePrincipal:
    """One service principal, or NotFound."""
    return get_or_404(session, ServicePrincipal, principal_id, what="service principal")


def list_principals(session: Session, *, filters: PrincipalFilter) -> Page[ServicePrincipal]:
    """A page of service principals."""
    return paginate(session, repository.principal_query(filters), ServicePrincipal,
                    limit=filters.limit, cursor=filters.cursor)


def update_principal(session: Session, *, principal_id: uuid.UUID,
                     principal_in: PrincipalUpdate, actor: Actor,
                     clock: Clock) -> ServicePrincipal:
    """Change the roles, description or disabled flag of a service principal."""
    principal = get_principal(session, principal_id=principal_id)
    changes = principal_in.model_dump(exclude_unset=True)
    for required in ("roles", "disabled"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null",
                               errors=[FieldError(required, "cannot be null")])
    if "roles" in changes:
        changes["roles"] = sorted(set(changes["roles"]))
    apply_changes(session, principal, changes, action="service_principal.update",
                  object_type="service_principal", actor=actor, clock=clock)
    return principal


# API tokens ---------------------------------------------------------------------------------


def token_view(row: ApiToken, principal: ServicePrincipal) -> dict[str, Any]:
    """What may be shown of a token: never its hash or secret."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "principal": principal.name,
        "principal_id": principal.id,
        "roles": row.roles,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
    }


def issue_token(session: Session, *, principal: ServicePrincipal, name: str,
                roles: list[str] | None, expires_at: datetime | None, actor: Actor,
                clock: Clock) -> tuple[str, ApiToken]:
    """Create an API token for ``principal``. The token text is returned once, never stored."""
    wanted = sorted(set(principal.roles if roles is None else roles))
    _check_roles(wanted)
    beyond = set(wanted) - set(principal.roles)
    if beyond:
        raise InvalidInput(
            "a token cannot carry roles its principal does not hold",
            errors=[FieldError("roles", f"principal lacks {sorted(beyond)}")],
        )
    text, prefix, digest = tokens.new_token()
    row = ApiToken(principal_id=principal.id, name=name, prefix=prefix, secret_hash=digest,
                   roles=wanted, expires_at=expires_at)
    row.created_at = row.updated_at = clock.now()
    session.add(row)
    session.flush()
    record(session, actor=actor, action="api_token.create", object_type="api_token",
           object_id=row.id, clock=clock, after=token_view(row, principal))
    return text, row


def create_token(session: Session, *, token_in: TokenCreate, default_days: int, actor: Actor,
                 clock: Clock) -> tuple[str, ApiToken]:
    """Issue a token for an existing, enabled principal; it expires after N days."""
    principal = session.get(ServicePrincipal, token_in.principal_id)
    if principal is None:
        raise InvalidInput("no such service principal",
                           errors=[FieldError("principal_id", "does not exist")])
    if principal.disabled:
        raise InvalidInput("the service principal is disabled",
                           errors=[FieldError("principal_id", "is disabled")])
    days = token_in.expires_in_days or default_days
    return issue_token(session, principal=principal, name=token_in.name,
                       roles=None if token_in.roles is None else list(token_in.roles),
                       expires_at=clock.now() + timedelta(days=days), actor=actor, clock=clock)


def get_token(session: Session, *, token_id: uuid.UUID) -> ApiToken:
    """One token's row (the caller shows only its metadata), or NotFound."""
    return get_or_404(session, ApiToken, token_id, what="api token")


def list_tokens(session: Session, *, filters: TokenFilter, clock: Clock) -> Page[ApiToken]:
    """A page of tokens."""
    return paginate(session, repository.token_query(filters, now=clock.now()), ApiToken,
                    limit=filters.limit, cursor=filters.cursor)


def find_token(session: Session, *, ref: str) -> ApiToken:
    """A token named by its id, its prefix, or its full text (the CLI's argument)."""
    ref = ref.strip()
    with contextlib.suppress(ValueError):  # not a UUID: try it as a prefix or token
        return get_token(session, token_id=uuid.UUID(ref))
    parts = tokens.split_token(ref)
    row = repository.token_by_prefix(session, parts.prefix if parts else ref)
    if row is None:
        raise NotFound("no API token has this id or prefix")
    return row


def revoke_token(session: Session, *, token_id: uuid.UUID, actor: Actor,
                 clock: Clock) -> ApiToken:
    """Revoke a token for good; revoking it again is a conflict."""
    row = get_token(session, token_id=token_id)
    if row.revoked_at is not None:
        raise Conflict(f"api token {row.prefix} was already revoked")
    principal = get_principal(session, principal_id=row.principal_id)
    before = token_view(row, principal)
    row.revoked_at = row.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="api_token.revoke", object_type="api_token",
           object_id=row.id, clock=clock, before=before, after=token_view(row, principal))
    return row


# Explicit service role grants ---------------------------------------------------------------


def grant_role(session: Session, *, grant_in: GrantCreate, actor: Actor,
               clock: Clock) -> ServiceRoleGrant:
    """Grant an explicit service role (administrator, auditor, hr-system) to a person."""
    require_exists(session, Identity, grant_in.identity_id, "identity_id")
    if repository.grant_of(session, grant_in.identity_id, grant_in.role) is not None:
        raise Conflict(f"the identity already holds the service role {grant_in.role!r}")
    grant = ServiceRoleGrant(identity_id=grant_in.identity_id, role=grant_in.role,
                             granted_by=actor.label)
    grant.created_at = grant.updated_at = clock.now()
    session.add(grant)
    session.flush()
    record(session, actor=actor, action="service_role.grant", object_type="service_role_grant",
           object_id=grant.id, clock=clock, after=snapshot(grant))
    return grant


def get_grant(session: Session, *, grant_id: uuid.UUID) -> ServiceRoleGrant:
    """One grant, or NotFound."""
    return get_or_404(session, ServiceRoleGrant, grant_id, what="service role grant")


def list_grants(session: Session, *, filters: GrantFilter) -> Page[ServiceRoleGrant]:
    """A page of explicit service role grants."""
    return paginate(session, repository.grant_query(filters), ServiceRoleGrant,
                    limit=filters.limit, cursor=filters.cursor)


def revoke_grant(session: Session, *, grant_id: uuid.UUID, actor: Actor, clock: Clock) -> None:
    """Take an explicit service role away; the audit trail keeps the grant's history."""
    grant = get_grant(session, grant_id=grant_id)
    before = snapshot(grant)
    session.delete(grant)
    session.flush()
    record(session, actor=actor, action="service_role.revoke", object_type="service_role_grant",
           object_id=grant_id, clock=clock, before=before)
