"""/hr: CSV upload and JSON push of HR feeds, feed runs, and the decision on held runs."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import IO, Annotated

from fastapi import APIRouter, Depends, Query, Request

from idgov.auth.caller import Caller
from idgov.lifecycle import feed, jsonfeed, service
from idgov.lifecycle.schemas import (
    DecisionIn,
    FeedChangeFilter,
    FeedChangePage,
    FeedChangeRead,
    FeedMode,
    FeedRunFilter,
    FeedRunPage,
    FeedRunRead,
)
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/hr", tags=["hr"])

Reader = Annotated[Caller, Depends(require("hr:read"))]
Importer = Annotated[Caller, Depends(require("hr:import"))]
Decider = Annotated[Caller, Depends(require("hr:decide"))]

_SPOOL = 8 * 1024 * 1024


async def _body_file(request: Request) -> AsyncIterator[IO[bytes]]:
    """The request body, streamed into a spooled temporary file (large files go to disk)."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - closed below
    try:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        yield spool
    finally:
        spool.close()


Upload = Annotated[IO[bytes], Depends(_body_file)]


@router.post("/sources/{source_id}/upload", response_model=FeedRunRead, status_code=201,
             responses=problem_responses(404, 409, 422),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string", "format": "binary"}}}}})
def upload_csv(session: DbSession, caller: Importer, clock: ClockDep, source_id: uuid.UUID,
               body: Upload, mode: Annotated[FeedMode | None, Query()] = None,
               file_name: Annotated[str | None, Query(max_length=500)] = None) -> FeedRunRead:
    """Run a CSV file (the request body, ``text/csv``) through the source: a snapshot
    (who is missing has left) or a delta; the source's default mode when not given. The
    run is answered whatever happened to it: applied (rejected rows in ``errors`` with row
    and column), held over a safety threshold, or rejected (all-or-nothing source). A
    header that does not fit the source's column mapping: 422, nothing read."""
    run = service.import_csv(session, source_id=source_id, stream=body, mode=mode,
                             channel="upload", file_name=file_name, actor=caller.actor,
                             clock=clock)
    return FeedRunRead.model_validate(run)


@router.post("/sources/{source_id}/push", response_model=FeedRunRead, status_code=201,
             responses=problem_responses(404, 409, 422))
def push(session: DbSession, caller: Importer, clock: ClockDep, source_id: uuid.UUID,
         body: jsonfeed.PushBody) -> FeedRunRead:
    """Run a batch of worker records (snapshot or delta) or events (hire, update,
    terminate, rehire, convert; always a delta) pushed by an HR system."""
    run = service.push(session, source_id=source_id, body=body, actor=caller.actor,
                       clock=clock)
    return FeedRunRead.model_validate(run)


@router.get("/runs", response_model=FeedRunPage, responses=problem_responses())
def list_runs(session: DbSession, caller: Reader,
              filters: Annotated[FeedRunFilter, Query()]) -> FeedRunPage:
    """Feed runs, oldest first; filter by source and state (``held``: waiting for a
    decision)."""
    page = service.list_runs(session, filters=filters)
    return FeedRunPage(items=[FeedRunRead.model_validate(r) for r in page.items],
                       next_cursor=page.next_cursor)


@router.get("/runs/{run_id}", response_model=FeedRunRead, responses=problem_responses(404))
def get_run(session: DbSession, caller: Reader, run_id: uuid.UUID) -> FeedRunRead:
    """One run with its counts and its row-by-row error report."""
    return FeedRunRead.model_validate(service.get_run(session, run_id=run_id))


@router.get("/runs/{run_id}/changes", response_model=FeedChangePage,
            responses=problem_responses(404))
def list_changes(session: DbSession, caller: Reader, run_id: uuid.UUID,
                 filters: Annotated[FeedChangeFilter, Query()]) -> FeedChangePage:
    """What the run changed, identity by identity, with the fields before and after; for
    a held run, the diff to look at before confirming or rejecting."""
    page = service.list_changes(session, run_id=run_id, filters=filters)
    return FeedChangePage(items=[FeedChangeRead.model_validate(c) for c in page.items],
                          next_cursor=page.next_cursor)


@router.post("/runs/{run_id}/confirm", response_model=FeedRunRead,
             responses=problem_responses(404, 409))
def confirm_run(session: DbSession, caller: Decider, clock: ClockDep, run_id: uuid.UUID,
                body: DecisionIn) -> FeedRunRead:
    """Apply a held run's changes as listed. 409 when the run is not held."""
    run = feed.confirm_run(session, run_id=run_id, note=body.note, actor=caller.actor,
                           clock=clock)
    return FeedRunRead.model_validate(run)


@router.post("/runs/{run_id}/reject", response_model=FeedRunRead,
             responses=problem_responses(404, 409))
def reject_run(session: DbSession, caller: Decider, clock: ClockDep, run_id: uuid.UUID,
               body: DecisionIn) -> FeedRunRead:
    """Refuse a held run: nothing of it applies. 409 when the run is not held."""
    run = feed.reject_run(session, run_id=run_id, note=body.note, actor=caller.actor,
                          clock=clock)
    return FeedRunRead.model_validate(run)
