"""Resolving the caller of a request, and managing service principals and API tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.audit.service import record
from idgov.auth import tokens
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.errors import FieldError, InvalidInput, Unauthenticated
from idgov.models.auth import SERVICE_ROLES, ApiToken, ServicePrincipal
from idgov.types import Actor

# Validates an OIDC bearer JWT and returns the caller; installed by the application.
OidcResolver = Callable[[Session, str], Caller]


def caller_from_api_token(session: Session, token: str, *, clock: Clock) -> Caller:
    """The caller behind an API token, or Unauthenticated (never saying which check failed)."""
    parts = tokens.split_token(token)
    if parts is None:
        raise Unauthenticated("the bearer token is not valid")
    row = session.scalars(select(ApiToken).where(ApiToken.prefix == parts.prefix)).one_or_none()
    if row is None or not tokens.matches(token, row.secret_hash):
        raise Unauthenticated("the bearer token is not valid")
    now = clock.now()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthenticated("the bearer token is expired or revoked")
    principal = session.get(ServicePrincipal, row.principal_id)
    if principal is None or principal.disabled:
        raise Unauthenticated("the bearer token is not valid")
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
    principal = session.scalars(
        select(ServicePrincipal).where(ServicePrincipal.name == name)
    ).one_or_none()
    if principal is not None:
        return principal
    principal = ServicePrincipal(name=name, roles=sorted(roles), description=description)
    session.add(principal)
    session.flush()
    record(session, actor=actor, action="service_principal.create",
           object_type="service_principal", object_id=principal.id, clock=clock,
           after={"name": name, "roles": sorted(roles)})
    return principal


def issue_token(session: Session, *, principal: ServicePrincipal, name: str,
                roles: list[str] | None, expires_at: datetime | None, actor: Actor,
                clock: Clock) -> tuple[str, ApiToken]:
    """Create an API token for ``principal``. The token text is returned once, never stored."""
    wanted = sorted(principal.roles if roles is None else roles)
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
    session.add(row)
    session.flush()
    record(session, actor=actor, action="api_token.create", object_type="api_token",
           object_id=row.id, clock=clock, after=token_view(row, principal))
    return text, row


def token_view(row: ApiToken, principal: ServicePrincipal) -> dict[str, Any]:
    """What may be shown of a token: never its hash or secret."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "principal": principal.name,
        "roles": row.roles,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
    }
