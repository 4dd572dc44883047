"""/siem: the sealed audit trail for a SIEM (pull, JSON Lines) and its syslog sinks.

``GET /siem/events`` needs ``siem:read`` (administrators, auditors, API tokens carrying
either role). Sinks are read with ``siem:read`` and changed with ``siem:write``.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from idgov.auth.caller import Caller
from idgov.siem import service
from idgov.siem.schemas import (
    EventPullParams,
    SiemSinkCreate,
    SiemSinkPage,
    SiemSinkRead,
    SiemSinkUpdate,
)
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import ListParams, problem_responses

router = APIRouter(prefix="/siem", tags=["siem"])

Reader = Annotated[Caller, Depends(require("siem:read"))]
Writer = Annotated[Caller, Depends(require("siem:write"))]

NDJSON = "application/x-ndjson"
_PULL_HEADERS: dict[str, Any] = {
    "X-Next-Cursor": {"description": "Cursor to send next time (after the last event of "
                      "this response; the one given when there is none)",
                      "schema": {"type": "string"}},
    "X-Has-More": {"description": "true when more events were already waiting: ask again "
                   "right away; false: poll later", "schema": {"type": "string"}},
    "X-Last-Seq": {"description": "seq of the last event served (of the cursor when none)",
                   "schema": {"type": "integer"}},
}


def _read(view: service.SinkView) -> SiemSinkRead:
    data = {name: getattr(view.sink, name) for name in SiemSinkRead.model_fields
            if name != "behind"}
    return SiemSinkRead(behind=view.behind, **data)


@router.get(
    "/events", response_class=Response,
    responses={200: {"description": "One sealed audit event per line, in seq order",
                     "content": {NDJSON: {"schema": {"type": "string"}}},
                     "headers": _PULL_HEADERS},
               **problem_responses()})
def pull_events(session: DbSession, caller: Reader,
                params: Annotated[EventPullParams, Query()]) -> Response:
    """The sealed audit events after ``cursor`` as JSON Lines (``application/x-ndjson``).

    Each line is one event: ``seq``, ``id``, ``occurred_at``, ``actor`` {type, id, name},
    ``action``, ``object`` {type, id}, ``before``, ``after``, ``context``, ``privileged``
    (it grants privileged access: see ``idgov.siem.privileged``), and ``prev_hash``,
    ``hash``, ``key_id``, ``signature`` to verify the chain offline. Every line is an event;
    the cursor to continue with comes in the ``X-Next-Cursor`` header, always set (poll
    again later with the same cursor when no event came). Only sealed events are served: the
    order is final and no event is skipped. A malformed cursor, or one past the end of the
    trail, is 422.
    """
    batch = service.pull(session, cursor=params.cursor, limit=params.limit)
    body = "".join(json.dumps(d, separators=(",", ":"), ensure_ascii=False) + "\n"
                   for d in batch.documents)
    return Response(content=body.encode(), media_type=NDJSON, headers={
        "X-Next-Cursor": batch.next_cursor, "X-Has-More": str(batch.has_more).lower(),
        "X-Last-Seq": str(batch.last_seq), "Cache-Control": "no-store"})


@router.get("/sinks", response_model=SiemSinkPage, responses=problem_responses())
def list_sinks(session: DbSession, caller: Reader,
               params: Annotated[ListParams, Query()]) -> SiemSinkPage:
    """Syslog sinks with their delivery state (cursor, events behind, last error)."""
    page = service.list_sinks(session, limit=params.limit, cursor=params.cursor)
    return SiemSinkPage(items=[_read(v) for v in page.items], next_cursor=page.next_cursor)


@router.post("/sinks", status_code=201, response_model=SiemSinkRead,
             responses=problem_responses(409))
def create_sink(session: DbSession, caller: Writer, clock: ClockDep,
                sink_in: SiemSinkCreate) -> SiemSinkRead:
    """Add a syslog receiver (RFC 5424 over TCP, optionally TLS)."""
    return _read(service.create_sink(session, sink_in=sink_in, actor=caller.actor,
                                     clock=clock))


@router.get("/sinks/{sink_id}", response_model=SiemSinkRead, responses=problem_responses(404))
def get_sink(session: DbSession, caller: Reader, sink_id: uuid.UUID) -> SiemSinkRead:
    return _read(service.get_sink(session, sink_id=sink_id))


@router.patch("/sinks/{sink_id}", response_model=SiemSinkRead,
              responses=problem_responses(404, 409))
def update_sink(session: DbSession, caller: Writer, clock: ClockDep, sink_id: uuid.UUID,
                sink_in: SiemSinkUpdate) -> SiemSinkRead:
    """Change a sink; ``cursor_seq`` rewinds (sends again) or skips events."""
    return _read(service.update_sink(session, sink_id=sink_id, sink_in=sink_in,
                                     actor=caller.actor, clock=clock))


@router.delete("/sinks/{sink_id}", status_code=204, responses=problem_responses(404))
def delete_sink(session: DbSession, caller: Writer, clock: ClockDep,
                sink_id: uuid.UUID) -> Response:
    service.delete_sink(session, sink_id=sink_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)
