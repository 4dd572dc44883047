"""Queries of the HR lifecycle: the current state a feed is compared with, runs, changes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from idgov.lifecycle.planner import Current
from idgov.models.hr import FeedChange, FeedRun
from idgov.models.identity import Group, GroupMember, Identity

_COLUMNS = ("given_name", "family_name", "display_name", "email", "user_name", "department",
            "location", "time_zone", "job_code", "job_title", "cost_center", "employment_type",
            "hire_date", "termination_date")
_CHUNK = 900
_STREAM = 5000  # rows fetched at a time when the whole population is read


def _current_query() -> Select[Any]:
    manager = aliased(Identity)
    return (select(Identity.id, Identity.employee_id, Identity.lifecycle_state,
                   Identity.hr_source_id, Identity.attributes, manager.employee_id,
                   *(getattr(Identity, c) for c in _COLUMNS))
            .outerjoin(manager, manager.id == Identity.manager_id))


def _groups_of(session: Session, identity_ids: Collection[uuid.UUID]
               ) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {}
    ids = list(identity_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(GroupMember.identity_id, Group.name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.kind == "organisation",
                   GroupMember.identity_id.in_(ids[start:start + _CHUNK])))
        for identity_id, name in rows:
            found.setdefault(identity_id, []).append(name)
    return found


def _all_groups(session: Session) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {}
    rows = session.execute(select(GroupMember.identity_id, Group.name)
                           .join(Group, Group.id == GroupMember.group_id)
                           .where(Group.kind == "organisation"))
    for identity_id, name in rows:
        found.setdefault(identity_id, []).append(name)
    return found


# Columns whose few distinct values repeat across a population (department, location,
# ...): a whole population loaded at once keeps one object per distinct value.
_REPEATED = tuple(i for i, c in enumerate(_COLUMNS)
                  if c in ("department", "location", "time_zone", "job_code", "job_title",
                           "cost_center", "employment_type"))


def _to_current(row: Any, groups: dict[uuid.UUID, list[str]] | None,
                shared: dict[Any, Any] | None = None) -> tuple[str, Current]:
    identity_id, employee_id, state, source_id, attributes, manager_employee_id, *rest = row
    if shared is not None:
        keep = shared.setdefault
        for i in _REPEATED:
            rest[i] = keep(rest[i], rest[i])
        state, source_id = keep(state, state), keep(source_id, source_id)
        manager_employee_id = keep(manager_employee_id, manager_employee_id)
        attributes = {k: keep(v, v) if v.__class__ is str else v
                      for k, v in (attributes or {}).items()}
    values: dict[str, Any] = dict(zip(_COLUMNS, rest, strict=True))
    values["employee_id"] = employee_id
    values["manager_employee_id"] = manager_employee_id
    values["attributes"] = dict(attributes or {})
    if groups is not None:
        values["groups"] = sorted(groups.get(identity_id, ()))
    return employee_id, Current(identity_id=identity_id, values=values,
                                lifecycle_state=state, source_id=source_id)


def load_all(session: Session, *, with_groups: bool) -> dict[str, Current]:
    """Every identity, by employee id (a snapshot compares against the whole population)."""
    groups = _all_groups(session) if with_groups else None
    shared: dict[Any, Any] = {}
    rows = session.execute(_current_query().execution_options(yield_per=_STREAM))
    return dict(_to_current(row, groups, shared) for row in rows)


def load_named(session: Session, employee_ids: Collection[str], *,
               with_groups: bool) -> dict[str, Current]:
    """The identities with these employee ids (a delta names only who changed)."""
    ids = sorted(employee_ids)
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(session.execute(
            _current_query().where(Identity.employee_id.in_(ids[start:start + _CHUNK]))))
    groups = _groups_of(session, [r[0] for r in rows]) if with_groups else None
    return dict(_to_current(row, groups) for row in rows)


def unique_owners(session: Session, *, emails: Collection[str], user_names: Collection[str]
                  ) -> dict[str, dict[str, str]]:
    """Who holds these emails and user names today (lower-cased value -> employee id)."""
    owners: dict[str, dict[str, str]] = {"email": {}, "user_name": {}}
    for name, column, values in (("email", Identity.email, emails),
                                 ("user_name", Identity.user_name, user_names)):
        wanted = sorted({v.lower() for v in values if v})
        for start in range(0, len(wanted), _CHUNK):
            for value, employee_id in session.execute(
                    select(func.lower(column), Identity.employee_id)
                    .where(func.lower(column).in_(wanted[start:start + _CHUNK]))):
                owners[name][value] = employee_id
    return owners


def held_run(session: Session, source_id: uuid.UUID) -> FeedRun | None:
    """The source's run waiting for an administrator, if any."""
    return session.scalars(select(FeedRun).where(FeedRun.source_id == source_id,
                                                 FeedRun.state == "held")
                           .limit(1)).one_or_none()


def changes_of(session: Session, run_id: uuid.UUID, *, state: str | None = None
               ) -> Iterator[FeedChange]:
    stmt = select(FeedChange).where(FeedChange.run_id == run_id)
    if state is not None:
        stmt = stmt.where(FeedChange.state == state)
    return iter(session.scalars(stmt.order_by(FeedChange.seq)).all())


def group_ids_by_name(session: Session, names: Collection[str]) -> dict[str, uuid.UUID]:
    """Organisational groups by name."""
    found: dict[str, uuid.UUID] = {}
    wanted = sorted(set(names))
    for start in range(0, len(wanted), _CHUNK):
        for group_id, name in session.execute(
                select(Group.id, Group.name).where(Group.name.in_(wanted[start:start + _CHUNK]),
                                                   Group.kind == "organisation")):
            found[name] = group_id
    return found


def runs_query(*, source_id: uuid.UUID | None, state: str | None) -> Select[Any]:
    stmt = select(FeedRun)
    if source_id is not None:
        stmt = stmt.where(FeedRun.source_id == source_id)
    if state is not None:
        stmt = stmt.where(FeedRun.state == state)
    return stmt


def changes_query(run_id: uuid.UUID, *, kind: str | None) -> Select[Any]:
    stmt = select(FeedChange).where(FeedChange.run_id == run_id)
    if kind is not None:
        stmt = stmt.where(FeedChange.kind == kind)
    return stmt
