"""/request-types: the kinds of request, each with its dynamic form (a JSON Schema)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from idgov.auth.caller import Caller
from idgov.request_types import service
from idgov.request_types.schemas import (
    RequestTypeCreate,
    RequestTypeFilter,
    RequestTypePage,
    RequestTypeRead,
    RequestTypeUpdate,
)
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/request-types", tags=["request types"])

Reader = Annotated[Caller, Depends(require("request_types:read"))]
Writer = Annotated[Caller, Depends(require("request_types:write"))]
KeyOrId = Annotated[str, Path(min_length=1, max_length=64,
                              description="The type's id or its key")]


@router.get("", response_model=RequestTypePage, responses=problem_responses())
def list_request_types(session: DbSession, _caller: Reader,
                       filters: Annotated[RequestTypeFilter, Query()]) -> RequestTypePage:
    """Request types with their forms (JSON Schemas clients render and the server checks)."""
    page = service.list_request_types(session, filters=filters)
    return RequestTypePage(items=[RequestTypeRead.model_validate(t) for t in page.items],
                           next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=RequestTypeRead,
             responses=problem_responses(409))
def create_request_type(session: DbSession, caller: Writer, clock: ClockDep,
                        type_in: RequestTypeCreate) -> RequestTypeRead:
    """Add a request type; 422 when ``form_schema`` is not a valid JSON Schema (Draft
    2020-12) of an object, 409 when the key is taken."""
    row = service.create_request_type(session, type_in=type_in, actor=caller.actor,
                                      clock=clock)
    return RequestTypeRead.model_validate(row)


@router.get("/{request_type_id}", response_model=RequestTypeRead,
            responses=problem_responses(404))
def get_request_type(session: DbSession, _caller: Reader,
                     request_type_id: KeyOrId) -> RequestTypeRead:
    """One request type, by id or by key."""
    return RequestTypeRead.model_validate(
        service.get_request_type(session, key_or_id=request_type_id))


@router.patch("/{request_type_id}", response_model=RequestTypeRead,
              responses=problem_responses(404))
def update_request_type(session: DbSession, caller: Writer, clock: ClockDep,
                        request_type_id: KeyOrId,
                        type_in: RequestTypeUpdate) -> RequestTypeRead:
    """Change a request type; ``active=false`` retires it (no new requests of it)."""
    row = service.update_request_type(session, key_or_id=request_type_id, type_in=type_in,
                                      actor=caller.actor, clock=clock)
    return RequestTypeRead.model_validate(row)


@router.delete("/{request_type_id}", status_code=204, responses=problem_responses(404, 409))
def delete_request_type(session: DbSession, caller: Writer, clock: ClockDep,
                        request_type_id: KeyOrId) -> Response:
    """Delete a request type created by mistake; 409 when any request used it (retire it
    with ``active=false`` instead)."""
    service.delete_request_type(session, key_or_id=request_type_id, actor=caller.actor,
                                clock=clock)
    return Response(status_code=204)
