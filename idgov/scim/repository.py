"""SQL of the SCIM service: visible users and groups, filters pushed down to columns.

A filter term on an attribute stored in a column (``userName eq``, ``externalId eq``,
``emails eq``, ``employeeNumber eq`` are what Entra ID and Okta send) becomes a WHERE
clause; :func:`user_condition` says whether the whole filter was translated exactly, and the
service evaluates the filter in Python over the candidates when it was not. Case-insensitive
comparisons are pushed down only for ASCII values (SQLite's ``lower()`` folds ASCII only).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select, true
from sqlalchemy.orm import Session

from idgov.models.identity import Group, GroupMember, Identity
from idgov.scim import schemas
from idgov.scim.filter import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    resolve,
)
from idgov.scim.resources import ACTIVE_STATES, DELETED_MARK, Member

_ENT = schemas.ENTERPRISE.lower()


def _user_name() -> ColumnElement[Any]:
    return func.coalesce(Identity.user_name, Identity.employee_id)


# Ref.key -> (column, kind): "ci" case-insensitive text, "cs" case-exact text, "dt" instant.
USER_COLUMNS: dict[str, tuple[Callable[[], Any], str]] = {
    "username": (_user_name, "ci"),
    "externalid": (lambda: Identity.external_id, "cs"),
    "emails": (lambda: Identity.email, "ci"),
    "emails.value": (lambda: Identity.email, "ci"),
    "displayname": (lambda: Identity.display_name, "ci"),
    "name.givenname": (lambda: Identity.given_name, "ci"),
    "name.familyname": (lambda: Identity.family_name, "ci"),
    "title": (lambda: Identity.job_title, "ci"),
    "usertype": (lambda: Identity.employment_type, "ci"),
    "timezone": (lambda: Identity.time_zone, "ci"),
    f"{_ENT}:employeenumber": (lambda: Identity.employee_id, "ci"),
    f"{_ENT}:department": (lambda: Identity.department, "ci"),
    f"{_ENT}:costcenter": (lambda: Identity.cost_center, "ci"),
    "meta.created": (lambda: Identity.created_at, "dt"),
    "meta.lastmodified": (lambda: Identity.updated_at, "dt"),
}

GROUP_COLUMNS: dict[str, tuple[Callable[[], Any], str]] = {
    "displayname": (lambda: Group.name, "ci"),
    "externalid": (lambda: Group.external_id, "cs"),
    "meta.created": (lambda: Group.created_at, "dt"),
    "meta.lastmodified": (lambda: Group.updated_at, "dt"),
}


def visible_users() -> Select[Identity]:
    """Identities as SCIM sees them: all but those a SCIM client deleted."""
    return select(Identity).where(Identity.attributes[DELETED_MARK].as_string().is_(None))


def organisation_groups() -> Select[Group]:
    return select(Group).where(Group.kind == "organisation")


def _text_condition(col: Any, kind: str, op: CompareOperator,
                    value: Any) -> ColumnElement[bool] | None:
    if not isinstance(value, str) or isinstance(value, bool):
        return None
    if kind == "ci":
        if not value.isascii():
            return None
        col, value = func.lower(col), value.lower()
    ops: dict[CompareOperator, Callable[[], ColumnElement[bool]]] = {
        CompareOperator.eq: lambda: col == value,
        CompareOperator.ne: lambda: or_(col.is_(None), col != value),
        CompareOperator.co: lambda: col.contains(value, autoescape=True),
        CompareOperator.sw: lambda: col.startswith(value, autoescape=True),
        CompareOperator.ew: lambda: col.endswith(value, autoescape=True),
    }
    build = ops.get(op)
    return build() if build is not None else None


def _instant_condition(col: Any, op: CompareOperator,
                       value: Any) -> ColumnElement[bool] | None:
    try:
        instant = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    ops = {CompareOperator.eq: col == instant, CompareOperator.gt: col > instant,
           CompareOperator.ge: col >= instant, CompareOperator.lt: col < instant,
           CompareOperator.le: col <= instant}
    return ops.get(op)


def _leaf(node: FilterNode, kind: schemas.ResourceKind,
          columns: dict[str, tuple[Callable[[], Any], str]],
          id_column: Any) -> ColumnElement[bool] | None:
    if not isinstance(node, Comparison | Present):
        return None
    ref = resolve(node.attr_path, kind)
    if ref.key == "id" and isinstance(node, Comparison) and node.op == CompareOperator.eq:
        try:
            return id_column == uuid.UUID(str(node.value))
        except ValueError:
            return id_column.is_(None)  # never true: an id that is no UUID matches nothing
    if ref.key == "active" and kind is schemas.USER_KIND and isinstance(node, Comparison) \
            and isinstance(node.value, bool) and node.op in (CompareOperator.eq,
                                                             CompareOperator.ne):
        active = Identity.lifecycle_state.in_(ACTIVE_STATES)
        return active if node.value == (node.op == CompareOperator.eq) else not_(active)
    found = columns.get(ref.key)
    if found is None:
        return None
    col, col_kind = found[0](), found[1]
    if isinstance(node, Present):
        return and_(col.is_not(None), col != "") if col_kind != "dt" else col.is_not(None)
    if col_kind == "dt":
        return _instant_condition(col, node.op, node.value)
    return _text_condition(col, col_kind, node.op, node.value)


def condition(node: FilterNode, kind: schemas.ResourceKind) -> tuple[ColumnElement[bool], bool]:
    """A WHERE clause every match of ``node`` satisfies, and whether it is exact (then the
    clause alone decides). Terms it cannot translate are left to the Python evaluator."""
    if kind is schemas.USER_KIND:
        columns, id_column = USER_COLUMNS, Identity.id
    else:
        columns, id_column = GROUP_COLUMNS, Group.id
    return _translate(node, kind, columns, id_column)


def _translate(node: FilterNode, kind: schemas.ResourceKind,
               columns: dict[str, tuple[Callable[[], Any], str]],
               id_column: Any) -> tuple[ColumnElement[bool], bool]:
    if isinstance(node, LogicalExpr):
        parts = [_translate(t, kind, columns, id_column) for t in node.terms]
        exact = all(e for _c, e in parts)
        if node.op == LogicalOperator.and_:
            return and_(*(c for c, _e in parts)), exact
        if exact:
            return or_(*(c for c, _e in parts)), True
        return true(), False
    if isinstance(node, Not):
        inner, exact = _translate(node.expr, kind, columns, id_column)
        return (not_(inner), True) if exact else (true(), False)
    leaf = _leaf(node, kind, columns, id_column)
    return (leaf, True) if leaf is not None else (true(), False)


def sort_column(key: str, kind: schemas.ResourceKind) -> ColumnElement[Any] | None:
    """The column to sort by for ``sortBy`` (a Ref.key), if it is one."""
    columns = USER_COLUMNS if kind is schemas.USER_KIND else GROUP_COLUMNS
    found = columns.get(key)
    if found is None:
        return None
    col = found[0]()
    return func.lower(col) if found[1] == "ci" else col


def count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def by_ids(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Identity]:
    if not ids:
        return {}
    return {i.id: i for i in session.scalars(select(Identity).where(Identity.id.in_(ids)))}


def by_employee_id(session: Session, employee_id: str) -> Identity | None:
    return session.scalars(select(Identity).where(Identity.employee_id == employee_id)).first()


def user_name_taken(session: Session, user_name: str, *, exclude: uuid.UUID | None) -> bool:
    """Whether another identity has ``user_name``, compared case-insensitively."""
    stmt = select(Identity.id, _user_name())
    if user_name.isascii():
        stmt = stmt.where(func.lower(_user_name()) == user_name.lower())
    wanted = user_name.casefold()
    return any(row[0] != exclude and str(row[1]).casefold() == wanted
               for row in session.execute(stmt))


def group_name_taken(session: Session, name: str, *, exclude: uuid.UUID | None) -> bool:
    """Whether another group (of any kind) is called ``name``, case-insensitively."""
    stmt = select(Group.id, Group.name)
    if name.isascii():
        stmt = stmt.where(func.lower(Group.name) == name.lower())
    return any(row[0] != exclude and row[1].casefold() == name.casefold()
               for row in session.execute(stmt))


def groups_of(session: Session, identity_ids: Collection[uuid.UUID]
              ) -> dict[uuid.UUID, list[Member]]:
    """The organisational groups of each identity."""
    out: dict[uuid.UUID, list[Member]] = {}
    if not identity_ids:
        return out
    stmt = (select(GroupMember.identity_id, Group.id, Group.name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.kind == "organisation", GroupMember.identity_id.in_(identity_ids))
            .order_by(Group.name))
    for identity_id, group_id, name in session.execute(stmt):
        out.setdefault(identity_id, []).append(Member(group_id, name))
    return out


def members_of(session: Session, group_ids: Collection[uuid.UUID]
               ) -> dict[uuid.UUID, list[Member]]:
    """The members of each group (SCIM-deleted identities included: they stay members)."""
    out: dict[uuid.UUID, list[Member]] = {}
    if not group_ids:
        return out
    stmt = (select(GroupMember.group_id, Identity.id, Identity.display_name)
            .join(Identity, Identity.id == GroupMember.identity_id)
            .where(GroupMember.group_id.in_(group_ids)).order_by(Identity.display_name))
    for group_id, identity_id, display in session.execute(stmt):
        out.setdefault(group_id, []).append(Member(identity_id, display))
    return out


def membership(session: Session, group_id: uuid.UUID) -> set[uuid.UUID]:
    return set(session.scalars(select(GroupMember.identity_id)
                               .where(GroupMember.group_id == group_id)))
