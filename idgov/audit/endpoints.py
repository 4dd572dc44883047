"""/audit: read the trail and verify the chain (capability ``audit:read``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.audit import service, verify
from idgov.audit.schemas import (
    AuditEventFilter,
    AuditEventPage,
    AuditEventRead,
    ChainVerificationRead,
)
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.schemas import problem_responses

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
