"""Queries of the auth module: identities by sign-in claim, principals, tokens, role grants."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from idgov.auth.schemas import GrantFilter, PrincipalFilter, TokenFilter
from idgov.models.auth import ApiToken, ServicePrincipal, ServiceRoleGrant
from idgov.models.identity import Identity

# Sign-in claims matched to a column other than the email address.
_CLAIM_COLUMNS = {"employee_id": Identity.employee_id}


def identity_for_claim(session: Session, claim: str, value: str) -> Identity | None:
    """The identity a sign-in claim names, or None (also when it would be ambiguous).

    ``employee_id`` is matched exactly to the HR key; any other claim (``email`` by default,
    or e.g. ``upn``) carries an email address, matched case-insensitively.
    """
    column = _CLAIM_COLUMNS.get(claim)
    if column is not None:
        stmt = select(Identity).where(column == value)
    else:
        stmt = select(Identity).where(func.lower(Identity.email) == value.lower())
    found = list(session.scalars(stmt.limit(2)))
    return found[0] if len(found) == 1 else None


def principal_by_name(session: Session, name: str) -> ServicePrincipal | None:
    return session.scalars(
        select(ServicePrincipal).where(ServicePrincipal.name == name)
    ).one_or_none()


def token_by_prefix(session: Session, prefix: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)).one_or_none()


def principal_query(filters: PrincipalFilter) -> Select[ServicePrincipal]:
    stmt = select(ServicePrincipal)
    if filters.name is not None:
        stmt = stmt.where(ServicePrincipal.name == filters.name)
    if filters.disabled is not None:
        stmt = stmt.where(ServicePrincipal.disabled == filters.disabled)
    return stmt


def token_query(filters: TokenFilter, *, now: datetime) -> Select[ApiToken]:
    stmt = select(ApiToken)
    if filters.principal_id is not None:
        stmt = stmt.where(ApiToken.principal_id == filters.principal_id)
    if filters.usable is True:
        stmt = stmt.where(ApiToken.revoked_at.is_(None),
                          or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
    elif filters.usable is False:
        stmt = stmt.where(or_(ApiToken.revoked_at.is_not(None), ApiToken.expires_at <= now))
    return stmt


def grant_query(filters: GrantFilter) -> Select[ServiceRoleGrant]:
    stmt = select(ServiceRoleGrant)
    if filters.identity_id is not None:
        stmt = stmt.where(ServiceRoleGrant.identity_id == filters.identity_id)
    if filters.role is not None:
        stmt = stmt.where(ServiceRoleGrant.role == filters.role)
    return stmt


def grant_of(session: Session, identity_id: uuid.UUID, role: str) -> ServiceRoleGrant | None:
    return session.scalars(
        select(ServiceRoleGrant).where(ServiceRoleGrant.identity_id == identity_id,
                                       ServiceRoleGrant.role == role)
    ).one_or_none()


def principal_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of the principals ``ids``, in one query."""
    if not ids:
        return {}
    rows = session.execute(
        select(ServicePrincipal.id, ServicePrincipal.name).where(ServicePrincipal.id.in_(ids))
    )
    return {row.id: row.name for row in rows}


def all_tokens(session: Session) -> list[tuple[ApiToken, str]]:
    """Every token with its principal's name, newest first (the CLI's list)."""
    rows = session.execute(
        select(ApiToken, ServicePrincipal.name)
        .join(ServicePrincipal, ServicePrincipal.id == ApiToken.principal_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    )
    return [(token, name) for token, name in rows]


def touch_token(session: Session, token_id: uuid.UUID, *, now: datetime,
                older_than: datetime) -> None:
    """Set last_used_at to ``now`` unless another request already did after ``older_than``.

    ``updated_at`` is kept: using a token is not a change to it.
    """
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id,
               or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= older_than))
        .values(last_used_at=now, updated_at=ApiToken.updated_at)
        .execution_options(synchronize_session="fetch")
    )
