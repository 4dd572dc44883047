"""Queries of applications and accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from idgov.applications.schemas import AccountFilter, ApplicationFilter
from idgov.models.application import Account, Application
from idgov.models.catalog import Entitlement
from idgov.models.identity import Group


def application_query(filters: ApplicationFilter) -> Select[Application]:
    stmt = select(Application)
    for column in ("connector_kind", "risk", "owner_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(Application, column) == value)
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        stmt = stmt.where(or_(func.lower(Application.name).like(pattern),
                              func.lower(Application.description).like(pattern)))
    return stmt


def application_name_taken(session: Session, name: str, *,
                           exclude: uuid.UUID | None = None) -> bool:
    stmt = select(Application.id).where(func.lower(Application.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(Application.id != exclude)
    return session.scalar(stmt.limit(1)) is not None


def group_kind(session: Session, group_id: uuid.UUID) -> str | None:
    return session.scalar(select(Group.kind).where(Group.id == group_id))


def dependants(session: Session, application_id: uuid.UUID) -> tuple[int, int]:
    """How many entitlements and accounts belong to the application."""
    entitlements = session.scalar(select(func.count()).select_from(Entitlement).where(
        Entitlement.application_id == application_id)) or 0
    accounts = session.scalar(select(func.count()).select_from(Account).where(
        Account.application_id == application_id)) or 0
    return entitlements, accounts


def with_credentials(session: Session) -> list[Application]:
    return list(session.scalars(select(Application)
                                .where(Application.credentials_encrypted.is_not(None))
                                .order_by(Application.id)))


def account_query(filters: AccountFilter) -> Select[Account]:
    stmt = select(Account)
    for column in ("application_id", "identity_id", "owner_id", "account_type", "status"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(Account, column) == value)
    orphan = and_(Account.identity_id.is_(None), Account.owner_id.is_(None))
    if filters.orphan is True:
        stmt = stmt.where(orphan)
    elif filters.orphan is False:
        stmt = stmt.where(~orphan)
    return stmt


def account_by_native_id(session: Session, application_id: uuid.UUID,
                         native_id: str) -> uuid.UUID | None:
    return session.scalar(select(Account.id).where(Account.application_id == application_id,
                                                   Account.native_id == native_id))


def primary_account_of(session: Session, application_id: uuid.UUID,
                       identity_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(select(Account.id).where(Account.application_id == application_id,
                                                   Account.identity_id == identity_id,
                                                   Account.account_type == "primary"))
