"""Group queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from idgov.groups.schemas import GroupFilter
from idgov.models.application import Application
from idgov.models.identity import Group, GroupMember, Identity


def list_query(filters: GroupFilter) -> Select[Group]:
    stmt = select(Group)
    if filters.kind is not None:
        stmt = stmt.where(Group.kind == filters.kind)
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        stmt = stmt.where(or_(func.lower(Group.name).like(pattern),
                              func.lower(Group.description).like(pattern)))
    return stmt


def name_taken(session: Session, name: str, *, exclude: uuid.UUID | None = None) -> bool:
    stmt = select(Group.id).where(func.lower(Group.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(Group.id != exclude)
    return session.scalar(stmt.limit(1)) is not None


def member_counts(session: Session, group_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Members per group for the given groups (groups without members are absent)."""
    ids = list(group_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(GroupMember.group_id, func.count())
        .where(GroupMember.group_id.in_(ids))
        .group_by(GroupMember.group_id)
    )
    return {group_id: count for group_id, count in rows}


def members_query(group_id: uuid.UUID) -> Select[Identity]:
    return select(Identity).join(GroupMember, GroupMember.identity_id == Identity.id).where(
        GroupMember.group_id == group_id)


def get_member(session: Session, group_id: uuid.UUID,
               identity_id: uuid.UUID) -> GroupMember | None:
    return session.get(GroupMember, (group_id, identity_id))


def applications_resolved_by(session: Session, group_id: uuid.UUID,
                             limit: int = 5) -> tuple[int, list[str]]:
    """How many applications route failures to the group, and the first few names."""
    where = Application.resolution_group_id == group_id
    count = session.scalar(select(func.count()).select_from(Application).where(where)) or 0
    names = list(session.scalars(select(Application.name).where(where)
                                 .order_by(Application.name).limit(limit)))
    return count, names
