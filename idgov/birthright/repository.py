"""Birthright queries: rules, the HR fields rules read, the assignments rules gave."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idgov.assignments.repository import not_ended
from idgov.birthright.schemas import BirthrightRuleFilter
from idgov.models.assignment import Assignment
from idgov.models.hr import BirthrightRule
from idgov.models.identity import Group, GroupMember, Identity

# The identity columns a rule may read (``groups`` comes from memberships).
SUBJECT_COLUMNS = ("department", "location", "job_code", "job_title", "cost_center",
                   "employment_type")
_CHUNK = 5000


def rule_list_query(filters: BirthrightRuleFilter) -> Select[Any]:
    stmt = select(BirthrightRule)
    if filters.enabled is not None:
        stmt = stmt.where(BirthrightRule.enabled == filters.enabled)
    if filters.role_id is not None:
        stmt = stmt.where(BirthrightRule.role_id == filters.role_id)
    if filters.entitlement_id is not None:
        stmt = stmt.where(BirthrightRule.entitlement_id == filters.entitlement_id)
    if filters.q:
        escaped = filters.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(func.lower(BirthrightRule.name).like(f"%{escaped}%", escape="\\"))
    return stmt


def name_taken(session: Session, name: str, exclude: uuid.UUID | None) -> bool:
    stmt = select(BirthrightRule.id).where(func.lower(BirthrightRule.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(BirthrightRule.id != exclude)
    return session.scalar(stmt.limit(1)) is not None


def enabled_rules(session: Session) -> list[BirthrightRule]:
    return list(session.scalars(select(BirthrightRule).where(BirthrightRule.enabled.is_(True))
                                .order_by(BirthrightRule.name, BirthrightRule.id)))


def assignment_count(session: Session, rule_id: uuid.UUID) -> int:
    """Every assignment (live or ended) the rule ever gave."""
    return session.scalar(select(func.count()).select_from(Assignment)
                          .where(Assignment.birthright_rule_id == rule_id)) or 0


def live_birthright(session: Session, identity_id: uuid.UUID,
                    now: datetime) -> list[Assignment]:
    """The identity's rule-given assignments in force or still to start."""
    return list(session.scalars(
        select(Assignment).where(Assignment.identity_id == identity_id,
                                 Assignment.source == "birthright",
                                 Assignment.birthright_rule_id.is_not(None), not_ended(now))
        .order_by(Assignment.valid_from, Assignment.id)))


def rule_holders(session: Session, rule_id: uuid.UUID, now: datetime
                 ) -> dict[uuid.UUID, list[tuple[uuid.UUID | None, uuid.UUID | None,
                                                 datetime | None]]]:
    """Identity -> (role_id, entitlement_id, valid_until) of the live assignments the rule
    gave them."""
    found: dict[uuid.UUID, list[tuple[uuid.UUID | None, uuid.UUID | None,
                                      datetime | None]]] = defaultdict(list)
    rows = session.execute(
        select(Assignment.identity_id, Assignment.role_id, Assignment.entitlement_id,
               Assignment.valid_until)
        .where(Assignment.birthright_rule_id == rule_id, not_ended(now)))
    for identity_id, role_id, entitlement_id, valid_until in rows:
        found[identity_id].append((role_id, entitlement_id, valid_until))
    return found


def organisation_groups(session: Session,
                        identity_ids: Collection[uuid.UUID] | None) -> dict[uuid.UUID, list[str]]:
    """Identity -> names of its organisational groups (sorted); None means everyone."""
    stmt = (select(GroupMember.identity_id, Group.name)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.kind == "organisation"))
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    if identity_ids is not None:
        ids = list(identity_ids)
        for start in range(0, len(ids), _CHUNK):
            for identity_id, name in session.execute(
                    stmt.where(GroupMember.identity_id.in_(ids[start:start + _CHUNK]))):
                found[identity_id].append(name)
    else:
        for identity_id, name in session.execute(stmt):
            found[identity_id].append(name)
    for names in found.values():
        names.sort()
    return found


def subject_fields(identity: Identity, groups: list[str]) -> dict[str, Any]:
    subject: dict[str, Any] = {c: getattr(identity, c) for c in SUBJECT_COLUMNS}
    subject["groups"] = groups
    subject["attributes"] = dict(identity.attributes or {})
    return subject


def population(session: Session) -> Iterator[tuple[Identity, dict[str, Any]]]:
    """Every identity that is not terminated, by employee id, with its rule subject."""
    groups = organisation_groups(session, None)
    stmt = (select(Identity).where(Identity.lifecycle_state != "terminated")
            .order_by(Identity.employee_id).execution_options(yield_per=_CHUNK))
    for identity in session.scalars(stmt):
        yield identity, subject_fields(identity, groups.get(identity.id, []))
