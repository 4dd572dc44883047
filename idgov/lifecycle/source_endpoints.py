"""/hr/sources: thin endpoints over the HR source services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.auth.caller import Caller
from idgov.lifecycle import sources as service
from idgov.lifecycle.source_schemas import (
    HrSourceCreate,
    HrSourceFilter,
    HrSourcePage,
    HrSourceRead,
    HrSourceUpdate,
)
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/hr/sources", tags=["hr"])

Reader = Annotated[Caller, Depends(require("hr:read"))]
Writer = Annotated[Caller, Depends(require("hr_sources:write"))]


@router.get("", response_model=HrSourcePage, responses=problem_responses())
def list_sources(session: DbSession, caller: Reader,
                 filters: Annotated[HrSourceFilter, Query()]) -> HrSourcePage:
    page = service.list_sources(session, filters=filters)
    return HrSourcePage(items=[HrSourceRead.model_validate(s) for s in page.items],
                        next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=HrSourceRead, responses=problem_responses(409))
def create_source(session: DbSession, caller: Writer, clock: ClockDep,
                  source_in: HrSourceCreate) -> HrSourceRead:
    return HrSourceRead.model_validate(service.create_source(
        session, source_in=source_in, actor=caller.actor, clock=clock))


@router.get("/{source_id}", response_model=HrSourceRead, responses=problem_responses(404))
def get_source(session: DbSession, caller: Reader, source_id: uuid.UUID) -> HrSourceRead:
    return HrSourceRead.model_validate(service.get_source(session, source_id=source_id))


@router.patch("/{source_id}", response_model=HrSourceRead,
              responses=problem_responses(404, 409))
def update_source(session: DbSession, caller: Writer, clock: ClockDep, source_id: uuid.UUID,
                  source_in: HrSourceUpdate) -> HrSourceRead:
    return HrSourceRead.model_validate(service.update_source(
        session, source_id=source_id, source_in=source_in, actor=caller.actor, clock=clock))


@router.delete("/{source_id}", status_code=204, responses=problem_responses(404, 409))
def delete_source(session: DbSession, caller: Writer, clock: ClockDep,
                  source_id: uuid.UUID) -> Response:
    service.delete_source(session, source_id=source_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)
