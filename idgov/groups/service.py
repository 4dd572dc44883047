"""Group services: teams and resolution groups of people. They flush, audit, never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes, record, snapshot
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate, require_exists
from idgov.errors import Conflict, FieldError, InUse, InvalidInput, NotFound
from idgov.groups import repository
from idgov.groups.schemas import GroupCreate, GroupFilter, GroupUpdate
from idgov.models.identity import Group, GroupMember, Identity
from idgov.types import Actor


@dataclass(frozen=True)
class GroupView:
    """A group with the number of its members."""

    group: Group
    member_count: int


def _view(session: Session, group: Group) -> GroupView:
    return GroupView(group, repository.member_counts(session, [group.id]).get(group.id, 0))


def _check_name(session: Session, name: str, exclude: uuid.UUID | None) -> None:
    if repository.name_taken(session, name, exclude=exclude):
        raise Conflict(f"a group named {name!r} already exists", field="name")


def _refuse_if_resolving(session: Session, group_id: uuid.UUID, doing: str) -> None:
    count, names = repository.applications_resolved_by(session, group_id)
    if count:
        shown = ", ".join(names) + (", ..." if count > len(names) else "")
        raise InUse(f"cannot {doing}: {count} application(s) route failures to it as their "
                    f"resolution group ({shown}); point them at another group first",
                    applications=count)


def get_group(session: Session, *, group_id: uuid.UUID) -> GroupView:
    """One group and its member count, or NotFound."""
    return _view(session, get_or_404(session, Group, group_id, what="group"))


def list_groups(session: Session, *, filters: GroupFilter, limit: int | None,
                cursor: str | None) -> Page[GroupView]:
    """Groups matching ``filters``, each with its member count."""
    page = paginate(session, repository.list_query(filters), Group, limit=limit, cursor=cursor)
    counts = repository.member_counts(session, [g.id for g in page.items])
    return Page(items=[GroupView(g, counts.get(g.id, 0)) for g in page.items],
                next_cursor=page.next_cursor)


def create_group(session: Session, *, group_in: GroupCreate, actor: Actor,
                 clock: Clock) -> GroupView:
    """Create a team or a resolution group."""
    _check_name(session, group_in.name, None)
    require_exists(session, Identity, group_in.owner_id, "owner_id")
    group = Group(**group_in.model_dump())
    group.created_at = group.updated_at = clock.now()
    session.add(group)
    session.flush()
    record(session, actor=actor, action="group.create", object_type="group",
           object_id=group.id, clock=clock, after=snapshot(group))
    return GroupView(group, 0)


def update_group(session: Session, *, group_id: uuid.UUID, group_in: GroupUpdate, actor: Actor,
                 clock: Clock) -> GroupView:
    """Change the given fields of a group.

    A group that applications use as their resolution group stays a resolution group.
    """
    group = get_or_404(session, Group, group_id, what="group")
    changes = group_in.model_dump(exclude_unset=True)
    for required in ("name", "kind"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null",
                               errors=[FieldError(required, "cannot be null")])
    if changes.get("name"):
        _check_name(session, changes["name"], group_id)
    if "owner_id" in changes:
        require_exists(session, Identity, changes["owner_id"], "owner_id")
    if changes.get("kind") not in (None, "resolution") and group.kind == "resolution":
        _refuse_if_resolving(session, group_id, "make this group a team")
    apply_changes(session, group, changes, action="group.update",
                  object_type="group", actor=actor, clock=clock)
    return _view(session, group)


def delete_group(session: Session, *, group_id: uuid.UUID, actor: Actor, clock: Clock) -> None:
    """Delete a group and its memberships; refused while an application routes failures to it."""
    view = get_group(session, group_id=group_id)
    _refuse_if_resolving(session, group_id, "delete this group")
    before = snapshot(view.group)
    session.delete(view.group)
    session.flush()
    record(session, actor=actor, action="group.delete", object_type="group",
           object_id=group_id, clock=clock, before=before,
           context={"members_removed": view.member_count})


def list_members(session: Session, *, group_id: uuid.UUID, limit: int | None,
                 cursor: str | None) -> Page[Identity]:
    """The identities that belong to a group, one page at a time."""
    get_or_404(session, Group, group_id, what="group")
    return paginate(session, repository.members_query(group_id), Identity, limit=limit,
                    cursor=cursor)


def add_member(session: Session, *, group_id: uuid.UUID, identity_id: uuid.UUID, actor: Actor,
               clock: Clock) -> GroupMember:
    """Make an identity a member of a group; Conflict when it already is one."""
    group = get_or_404(session, Group, group_id, what="group")
    require_exists(session, Identity, identity_id, "identity_id")
    if repository.get_member(session, group_id, identity_id) is not None:
        raise Conflict(f"identity {identity_id} is already a member of group {group.name!r}",
                       field="identity_id")
    member = GroupMember(group_id=group_id, identity_id=identity_id)
    session.add(member)
    group.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="group.member_add", object_type="group",
           object_id=group_id, clock=clock, after=snapshot(member))
    return member


def remove_member(session: Session, *, group_id: uuid.UUID, identity_id: uuid.UUID,
                  actor: Actor, clock: Clock) -> None:
    """Take an identity out of a group; NotFound when it is not a member."""
    group = get_or_404(session, Group, group_id, what="group")
    member = repository.get_member(session, group_id, identity_id)
    if member is None:
        raise NotFound(f"identity {identity_id} is not a member of group {group.name!r}")
    before = snapshot(member)
    session.delete(member)
    group.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="group.member_remove", object_type="group",
           object_id=group_id, clock=clock, before=before)
