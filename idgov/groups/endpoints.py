"""/groups: thin endpoints over the group services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.auth.caller import Caller
from idgov.groups import service
from idgov.groups.schemas import (
    GroupCreate,
    GroupFilter,
    GroupMemberRead,
    GroupPage,
    GroupRead,
    GroupUpdate,
    MemberAdd,
)
from idgov.identities.schemas import IdentityPage, IdentityRead
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import ListParams, problem_responses

router = APIRouter(prefix="/groups", tags=["groups"])

Reader = Annotated[Caller, Depends(require("groups:read"))]
Writer = Annotated[Caller, Depends(require("groups:write"))]


def _read(view: service.GroupView) -> GroupRead:
    return GroupRead.of(view.group, view.member_count)


@router.get("", response_model=GroupPage, responses=problem_responses())
def list_groups(session: DbSession, caller: Reader,
                filters: Annotated[GroupFilter, Query()]) -> GroupPage:
    page = service.list_groups(session, filters=filters, limit=filters.limit,
                               cursor=filters.cursor)
    return GroupPage(items=[_read(v) for v in page.items], next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=GroupRead, responses=problem_responses(409))
def create_group(session: DbSession, caller: Writer, clock: ClockDep,
                 group_in: GroupCreate) -> GroupRead:
    return _read(service.create_group(session, group_in=group_in, actor=caller.actor,
                                      clock=clock))


@router.get("/{group_id}", response_model=GroupRead, responses=problem_responses(404))
def get_group(session: DbSession, caller: Reader, group_id: uuid.UUID) -> GroupRead:
    return _read(service.get_group(session, group_id=group_id))


@router.patch("/{group_id}", response_model=GroupRead, responses=problem_responses(404, 409))
def update_group(session: DbSession, caller: Writer, clock: ClockDep, group_id: uuid.UUID,
                 group_in: GroupUpdate) -> GroupRead:
    return _read(service.update_group(session, group_id=group_id, group_in=group_in,
                                      actor=caller.actor, clock=clock))


@router.delete("/{group_id}", status_code=204, responses=problem_responses(404, 409))
def delete_group(session: DbSession, caller: Writer, clock: ClockDep,
                 group_id: uuid.UUID) -> Response:
    service.delete_group(session, group_id=group_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)


@router.get("/{group_id}/members", response_model=IdentityPage,
            responses=problem_responses(404))
def list_members(session: DbSession, caller: Reader, group_id: uuid.UUID,
                 params: Annotated[ListParams, Query()]) -> IdentityPage:
    page = service.list_members(session, group_id=group_id, limit=params.limit,
                                cursor=params.cursor)
    return IdentityPage(items=[IdentityRead.model_validate(i) for i in page.items],
                        next_cursor=page.next_cursor)


@router.post("/{group_id}/members", status_code=201, response_model=GroupMemberRead,
             responses=problem_responses(404, 409))
def add_member(session: DbSession, caller: Writer, clock: ClockDep, group_id: uuid.UUID,
               member_in: MemberAdd) -> GroupMemberRead:
    member = service.add_member(session, group_id=group_id, identity_id=member_in.identity_id,
                                actor=caller.actor, clock=clock)
    return GroupMemberRead.model_validate(member)


@router.delete("/{group_id}/members/{identity_id}", status_code=204,
               responses=problem_responses(404))
def remove_member(session: DbSession, caller: Writer, clock: ClockDep, group_id: uuid.UUID,
                  identity_id: uuid.UUID) -> Response:
    service.remove_member(session, group_id=group_id, identity_id=identity_id,
                          actor=caller.actor, clock=clock)
    return Response(status_code=204)
