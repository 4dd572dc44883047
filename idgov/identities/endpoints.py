"""/identities: thin endpoints over the identity services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.auth.caller import Caller
from idgov.identities import service
from idgov.identities.schemas import (
    IdentityCreate,
    IdentityFilter,
    IdentityPage,
    IdentityRead,
    IdentityUpdate,
)
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/identities", tags=["identities"])

Reader = Annotated[Caller, Depends(require("identities:read", "identities:read_related"))]
Writer = Annotated[Caller, Depends(require("identities:write"))]


@router.get("", response_model=IdentityPage, responses=problem_responses())
def list_identities(
    session: DbSession,
    caller: Reader,
    filters: Annotated[IdentityFilter, Query()],
) -> IdentityPage:
    page = service.list_identities(session, caller=caller, filters=filters,
                                   limit=filters.limit, cursor=filters.cursor)
    return IdentityPage(items=[IdentityRead.model_validate(i) for i in page.items],
                        next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=IdentityRead, responses=problem_responses())
def create_identity(session: DbSession, caller: Writer, clock: ClockDep,
                    identity_in: IdentityCreate) -> IdentityRead:
    identity = service.create_identity(session, identity_in=identity_in, actor=caller.actor,
                                       clock=clock)
    return IdentityRead.model_validate(identity)


@router.get("/{identity_id}", response_model=IdentityRead, responses=problem_responses(404))
def get_identity(session: DbSession, caller: Reader, identity_id: uuid.UUID) -> IdentityRead:
    identity = service.get_visible(session, caller=caller, identity_id=identity_id)
    return IdentityRead.model_validate(identity)


@router.patch("/{identity_id}", response_model=IdentityRead, responses=problem_responses(404))
def update_identity(session: DbSession, caller: Writer, clock: ClockDep,
                    identity_id: uuid.UUID, identity_in: IdentityUpdate) -> IdentityRead:
    identity = service.update_identity(session, identity_id=identity_id,
                                       identity_in=identity_in, actor=caller.actor, clock=clock)
    return IdentityRead.model_validate(identity)


@router.delete("/{identity_id}", status_code=204, responses=problem_responses(404, 409))
def delete_identity(session: DbSession, caller: Writer, clock: ClockDep,
                    identity_id: uuid.UUID) -> Response:
    service.delete_identity(session, identity_id=identity_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)
