"""Request type queries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idgov.models.requests import AccessRequest, RequestType
from idgov.request_types.schemas import RequestTypeFilter


def list_query(filters: RequestTypeFilter) -> Select[Any]:
    stmt = select(RequestType)
    if filters.active is not None:
        stmt = stmt.where(RequestType.active.is_(filters.active))
    return stmt


def by_key(session: Session, key: str) -> RequestType | None:
    return session.scalars(select(RequestType).where(RequestType.key == key)).one_or_none()


def key_taken(session: Session, key: str) -> bool:
    return session.scalar(select(RequestType.id).where(RequestType.key == key)) is not None


def request_count(session: Session, request_type_id: uuid.UUID) -> int:
    return session.scalar(select(func.count()).select_from(AccessRequest)
                          .where(AccessRequest.request_type_id == request_type_id)) or 0
