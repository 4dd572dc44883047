"""Fulfilment task queries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from idgov.fulfilment.schemas import TaskFilter
from idgov.models.identity import Group, GroupMember
from idgov.models.provisioning import FulfilmentTask


def list_query(filters: TaskFilter, *, member_id: uuid.UUID | None = None) -> Select[Any]:
    """Tasks matching ``filters``; with ``member_id`` only those of that person's groups."""
    stmt = select(FulfilmentTask)
    for column in ("state", "group_id", "application_id", "identity_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(FulfilmentTask, column) == value)
    if member_id is not None:
        stmt = stmt.where(FulfilmentTask.group_id.in_(
            select(GroupMember.group_id).where(GroupMember.identity_id == member_id)))
    return stmt


def is_member(session: Session, *, group_id: uuid.UUID | None, identity_id: uuid.UUID) -> bool:
    if group_id is None:
        return False
    return session.get(GroupMember, (group_id, identity_id)) is not None


def member_ids(session: Session, group_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.scalars(select(GroupMember.identity_id)
                                .where(GroupMember.group_id == group_id)
                                .order_by(GroupMember.identity_id)))


def group_owner(session: Session, group_id: uuid.UUID | None) -> uuid.UUID | None:
    if group_id is None:
        return None
    group = session.get(Group, group_id)
    return None if group is None else group.owner_id


def task_of(session: Session, operation_id: uuid.UUID) -> FulfilmentTask | None:
    return session.scalars(select(FulfilmentTask)
                           .where(FulfilmentTask.operation_id == operation_id)).one_or_none()


def overdue(session: Session, now: datetime) -> list[FulfilmentTask]:
    """Open tasks past their deadline, locked (skipped when another sweep holds them)."""
    return list(session.scalars(
        select(FulfilmentTask)
        .where(FulfilmentTask.state == "open", FulfilmentTask.due_at <= now)
        .order_by(FulfilmentTask.due_at, FulfilmentTask.id)
        .with_for_update(skip_locked=True)))
