"""/audit: read the trail, export a verifiable slice of it, verify the chain (capability
``audit:read``: administrators and auditors; every route is a GET).

The history of one object is ``GET /audit/events?object_type=T&object_id=ID`` (seq order,
paged); ``GET /audit/export?object_type=T&object_id=ID`` gives the same events as a slice
that verifies offline.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from idgov.audit import service, slice_export, verify
from idgov.audit.schemas import (
    AuditEventFilter,
    AuditEventPage,
    AuditEventRead,
    AuditSliceFilter,
    ChainVerificationRead,
)
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.schemas import problem_responses
from idgov.web.streaming import threaded_body

router = APIRouter(prefix="/audit", tags=["audit"])

Reader = Annotated[Caller, Depends(require("audit:read"))]


@router.get("/events", response_model=AuditEventPage, responses=problem_responses())
def list_events(session: DbSession, caller: Reader,
                filters: Annotated[AuditEventFilter, Query()]) -> AuditEventPage:
    """Sealed events in chain order (ascending seq), filtered; page on with ``next_cursor``."""
    page = service.list_events(session, filters=filters)
    return AuditEventPage(items=[AuditEventRead.model_validate(e) for e in page.items],
                          next_cursor=page.next_cursor)


@router.get("/events/{event_id}", response_model=AuditEventRead,
            responses=problem_responses(404))
def get_event(session: DbSession, caller: Reader, event_id: uuid.UUID) -> AuditEventRead:
    """One event by id, sealed or still awaiting its seal."""
    return AuditEventRead.model_validate(service.get_event(session, event_id=event_id))


@router.get("/verify", response_model=ChainVerificationRead, responses=problem_responses())
def verify_chain(session: DbSession, caller: Reader, clock: ClockDep,
                 ctx: Ctx) -> ChainVerificationRead:
    """Verify the whole chain now, with the service's own public keys.

    Checks that seq runs from 1 without gaps, that each event links to the hash of the one
    before it, that each hash matches the event's content, that every block signature verifies
    and every event is covered by one, that the chain head row names the last event, and that
    no event stayed unsealed longer than a minute. The answer is 200 whether or not the chain
    is intact: read ``ok``, ``first_bad`` and ``problems``.

    The service knows its current signing key and the configured public key file; a chain
    signed with keys retired since is verified offline with ``idgov audit verify
    --public-key OLD --public-key NEW``. The check reads every event, so on a long chain it
    takes a while (tens of thousands of events a second).
    """
    result = verify.verify_service_chain(
        session, public_key_paths=[ctx.settings.public_key_path], clock=clock)
    return ChainVerificationRead.model_validate(result)




@router.get("/export", response_class=StreamingResponse, responses={
    200: {"description": "The slice, JSON Lines: a header, the events, a signed trailer",
          "content": {slice_export.MEDIA_TYPE: {"schema": {"type": "string",
                                                           "format": "binary"}}}},
    **problem_responses()})
def export_slice(caller: Reader, ctx: Ctx, clock: ClockDep,
                 filters: Annotated[AuditSliceFilter, Query()]) -> StreamingResponse:
    """A slice of the trail that an auditor verifies offline with ``idgov audit verify-slice
    FILE --public-key PEM`` (the key is at ``GET /reports/public-key``).

    The matching sealed events come in seq order, each with its hashed record, hash and
    block signature, with the events that tie it to its block's signature (marked
    ``proof``), between a header stating the filters and the chain head, and a trailer
    signed by the service that covers the whole file. With only ``from``/``to`` (or no
    filter) the slice is one contiguous run of the chain. Same bytes as ``idgov audit
    export`` with the same filters. A file cut short has no trailer and fails verification.
    """
    stream = slice_export.open_slice_stream(
        ctx.session_factory, filters=slice_export.slice_filters(filters), clock=clock)
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    disposition = f'attachment; filename="audit-slice-{stamp}.jsonl"'
    return StreamingResponse(threaded_body(stream), media_type=slice_export.MEDIA_TYPE,
                             headers={"Content-Disposition": disposition})
