"""Identity queries."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from idgov.identities.schemas import IdentityFilter
from idgov.models.identity import Identity


def list_query(filters: IdentityFilter) -> Select[Identity]:
    stmt = select(Identity)
    for column in ("department", "location", "lifecycle_state", "manager_id", "employee_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(Identity, column) == value)
    if filters.email is not None:
        stmt = stmt.where(func.lower(Identity.email) == filters.email.lower())
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        stmt = stmt.where(or_(func.lower(Identity.display_name).like(pattern),
                              func.lower(Identity.email).like(pattern)))
    return stmt


def manager_chain(session: Session, identity_id: uuid.UUID, limit: int = 50) -> list[uuid.UUID]:
    """The managers above ``identity_id``, nearest first (bounded, in case of bad data)."""
    chain: list[uuid.UUID] = []
    current: uuid.UUID | None = identity_id
    while current is not None and len(chain) < limit:
        current = session.scalar(select(Identity.manager_id).where(Identity.id == current))
        if current is None or current in chain:
            break
        chain.append(current)
    return chain


def has_reports(session: Session, identity_id: uuid.UUID) -> bool:
    return session.scalar(
        select(Identity.id).where(Identity.manager_id == identity_id).limit(1)
    ) is not None


def count_by_email(session: Session, email: str, exclude: uuid.UUID | None = None) -> int:
    stmt = select(func.count()).select_from(Identity).where(
        func.lower(Identity.email) == email.lower()
    )
    if exclude is not None:
        stmt = stmt.where(Identity.id != exclude)
    return session.scalar(stmt) or 0
