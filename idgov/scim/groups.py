"""SCIM Groups: organisational groups (departments, teams) that birthright rules read.

A SCIM Group never grants access itself. Adding or removing a member recomputes that
member's birthright access (``idgov.birthright.service.recompute``) with the SCIM source's
mover grace period, since the rules may read organisational group names.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes, record, snapshot
from idgov.birthright.service import recompute
from idgov.clock import Clock
from idgov.lifecycle.feed import scim_source
from idgov.models.identity import Group, GroupMember
from idgov.scim import repository as repo
from idgov.scim import schemas
from idgov.scim.errors import invalid_value, not_found, uniqueness
from idgov.scim.patch import apply_patch
from idgov.scim.resources import group_input, group_resource, normalise
from idgov.scim.service import ListQuery, check_version, list_resources
from idgov.types import Actor

RECOMPUTE_REASON = "organisational group membership changed"


def render_groups(session: Session, groups: list[Group], base: str) -> list[dict[str, Any]]:
    members = repo.members_of(session, [g.id for g in groups])
    return [group_resource(g, base=base, members=members.get(g.id, ())) for g in groups]


def load_group(session: Session, group_id: str) -> Group:
    """An organisational group by SCIM id; teams and resolution groups are not SCIM's."""
    try:
        gid = uuid.UUID(group_id)
    except ValueError as exc:
        raise not_found(f"Group {group_id} does not exist") from exc
    group = session.scalars(repo.organisation_groups().where(Group.id == gid)).first()
    if group is None:
        raise not_found(f"Group {group_id} does not exist")
    return group


def get_group(session: Session, *, group_id: str, base: str) -> dict[str, Any]:
    """One Group with its members."""
    return render_groups(session, [load_group(session, group_id)], base)[0]


def list_groups(session: Session, *, query: ListQuery, base: str) -> dict[str, Any]:
    """Groups matching a filter, one page at a time."""
    return list_resources(session, stmt=repo.organisation_groups(), kind=schemas.GROUP_KIND,
                          query=query, id_column=Group.id,
                          render=lambda rows: render_groups(session, list(rows), base))


def _member_ids(session: Session, values: list[str]) -> set[uuid.UUID]:
    ids: set[uuid.UUID] = set()
    for value in values:
        try:
            ids.add(uuid.UUID(value))
        except ValueError as exc:
            raise invalid_value(f"member {value!r} is not a User id") from exc
    known = set(repo.by_ids(session, ids))
    unknown = sorted(str(i) for i in ids - known)
    if unknown:
        raise invalid_value(f"unknown members: {', '.join(unknown)}")
    return ids


def _recompute(session: Session, identity_ids: set[uuid.UUID], *, actor: Actor,
               clock: Clock) -> None:
    if not identity_ids:
        return
    grace = timedelta(days=scim_source(session).mover_grace_days)
    identities = repo.by_ids(session, identity_ids)
    for identity_id in sorted(identity_ids):
        if identities[identity_id].lifecycle_state == "terminated":
            continue
        recompute(session, identity_id=identity_id, grace=grace, actor=actor, clock=clock,
                  reason=RECOMPUTE_REASON)


def _set_members(session: Session, group: Group, wanted: set[uuid.UUID], *, actor: Actor,
                 clock: Clock) -> None:
    current = repo.membership(session, group.id)
    added, removed = wanted - current, current - wanted
    for identity_id in sorted(added):
        member = GroupMember(group_id=group.id, identity_id=identity_id)
        session.add(member)
        session.flush()
        record(session, actor=actor, action="group.member_add", object_type="group",
               object_id=group.id, clock=clock, after=snapshot(member),
               context={"channel": "scim"})
    for identity_id in sorted(removed):
        gone = session.get(GroupMember, (group.id, identity_id))
        if gone is None:
            continue
        before = snapshot(gone)
        session.delete(gone)
        session.flush()
        record(session, actor=actor, action="group.member_remove", object_type="group",
               object_id=group.id, clock=clock, before=before, context={"channel": "scim"})
    if added or removed:
        group.updated_at = clock.now()
        session.flush()
        _recompute(session, added | removed, actor=actor, clock=clock)


def create_group(session: Session, *, body: Any, base: str, actor: Actor,
                 clock: Clock) -> dict[str, Any]:
    """POST /Groups: a new organisational group and its members."""
    name, external_id, member_values = group_input(normalise(body, schemas.GROUP_KIND))
    if repo.group_name_taken(session, name, exclude=None):
        raise uniqueness(f"a group named {name!r} already exists")
    members = _member_ids(session, member_values)
    now = clock.now()
    group = Group(name=name, kind="organisation", external_id=external_id, created_at=now,
                  updated_at=now)
    session.add(group)
    session.flush()
    record(session, actor=actor, action="group.create", object_type="group",
           object_id=group.id, clock=clock, after=snapshot(group), context={"channel": "scim"})
    _set_members(session, group, members, actor=actor, clock=clock)
    return render_groups(session, [group], base)[0]


def _replace(session: Session, group: Group, doc: dict[str, Any], *, base: str, actor: Actor,
             clock: Clock) -> dict[str, Any]:
    name, external_id, member_values = group_input(doc)
    if name != group.name and repo.group_name_taken(session, name, exclude=group.id):
        raise uniqueness(f"a group named {name!r} already exists")
    members = _member_ids(session, member_values)
    changes = {k: v for k, v in (("name", name), ("external_id", external_id))
               if getattr(group, k) != v}
    if changes:
        apply_changes(session, group, changes, action="group.update", object_type="group",
                      actor=actor, clock=clock)
    renamed = "name" in changes
    _set_members(session, group, members, actor=actor, clock=clock)
    if renamed:
        # Rules may read the group's name: every member's subject changed.
        _recompute(session, repo.membership(session, group.id), actor=actor, clock=clock)
    return render_groups(session, [group], base)[0]


def replace_group(session: Session, *, group_id: str, body: Any, if_match: str | None,
                  base: str, actor: Actor, clock: Clock) -> dict[str, Any]:
    """PUT /Groups/{id}: name, externalId and the whole member list."""
    group = load_group(session, group_id)
    check_version(render_groups(session, [group], base)[0], if_match)
    return _replace(session, group, normalise(body, schemas.GROUP_KIND), base=base,
                    actor=actor, clock=clock)


def patch_group(session: Session, *, group_id: str, body: Any, if_match: str | None,
                base: str, actor: Actor, clock: Clock) -> dict[str, Any]:
    """PATCH /Groups/{id}: members added or removed, the name replaced."""
    group = load_group(session, group_id)
    current = render_groups(session, [group], base)[0]
    check_version(current, if_match)
    patched = apply_patch(current, body, schemas.GROUP_KIND)
    return _replace(session, group, normalise(patched, schemas.GROUP_KIND), base=base,
                    actor=actor, clock=clock)


def delete_group(session: Session, *, group_id: str, if_match: str | None, base: str,
                 actor: Actor, clock: Clock) -> None:
    """DELETE /Groups/{id}: the group goes; its former members' birthright is recomputed."""
    group = load_group(session, group_id)
    check_version(render_groups(session, [group], base)[0], if_match)
    former = repo.membership(session, group.id)
    before = snapshot(group)
    session.delete(group)
    session.flush()
    record(session, actor=actor, action="group.delete", object_type="group",
           object_id=group_id, clock=clock, before=before,
           context={"channel": "scim", "members_removed": len(former)})
    session.expire_all()
    _recompute(session, former, actor=actor, clock=clock)

