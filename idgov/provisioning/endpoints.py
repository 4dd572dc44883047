"""/provisioning/operations: the recorded provisioning intent, read-only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.auth.caller import Caller
from idgov.provisioning import service
from idgov.provisioning.schemas import OperationFilter, OperationPage, OperationRead
from idgov.web.deps import DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/provisioning", tags=["provisioning"])

Reader = Annotated[Caller, Depends(require("provisioning:read"))]


@router.get("/operations", response_model=OperationPage, responses=problem_responses())
def list_operations(session: DbSession, _caller: Reader,
                    filters: Annotated[OperationFilter, Query()]) -> OperationPage:
    """Operations recorded for changes of effective access, filtered by identity, request
    line, assignment, entitlement, state, cause or action."""
    page = service.list_operations(session, filters=filters)
    return OperationPage(items=[OperationRead.model_validate(o) for o in page.items],
                         next_cursor=page.next_cursor)


@router.get("/operations/{operation_id}", response_model=OperationRead,
            responses=problem_responses(404))
def get_operation(session: DbSession, _caller: Reader,
                  operation_id: uuid.UUID) -> OperationRead:
    return OperationRead.model_validate(service.get_operation(session,
                                                              operation_id=operation_id))
