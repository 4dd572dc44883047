"""/requests: ask for access, follow one's requests, submit a draft, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.auth.caller import Caller
from idgov.requests import service
from idgov.requests.schemas import (
    RequestCancel,
    RequestCreate,
    RequestFilter,
    RequestPage,
    RequestRead,
    RequestSummary,
)
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/requests", tags=["requests"])

Reader = Annotated[Caller, Depends(require("requests:read", "requests:read_own"))]
Creator = Annotated[Caller, Depends(require("requests:create"))]


def _window_days(ctx: Ctx) -> int:
    return ctx.settings.duplicate_expiry_window_days


WindowDays = Annotated[int, Depends(_window_days)]


@router.post("", status_code=201, response_model=RequestRead,
             responses=problem_responses(409))
def create_request(session: DbSession, caller: Creator, clock: ClockDep, window: WindowDays,
                   request_in: RequestCreate) -> RequestRead:
    """Ask for access for yourself, or as a manager for a direct or indirect report (403
    otherwise).

    Checked before anything is saved: the form data against the type's JSON Schema (422 at
    ``form_data.<field>``), the items (422), the beneficiary (422 unless active), durations
    (422 beyond the type's or the item's maximum), the data-handling acknowledgement for
    personal or regulated data (422), duplicates (409 naming the pending REQ/RITM or the held
    assignment), then separation of duties (409 with each rule and the paths on both sides;
    offer a ``mitigation`` when the rule allows exceptions). Lines within the type's
    auto-approval risk are approved and fulfilled at once; the others wait for approvals.
    ``submit=false`` keeps a draft to submit later.
    """
    request = service.create_request(session, request_in=request_in, caller=caller,
                                     window_days=window, clock=clock)
    return service.request_view(session, request)


@router.get("", response_model=RequestPage, responses=problem_responses())
def list_requests(session: DbSession, caller: Reader,
                  filters: Annotated[RequestFilter, Query()]) -> RequestPage:
    """Your requests (as requester or beneficiary); every request with requests:read."""
    page = service.list_requests(session, caller=caller, filters=filters)
    return RequestPage(items=[RequestSummary.model_validate(r) for r in page.items],
                       next_cursor=page.next_cursor)


@router.get("/{request_id}", response_model=RequestRead, responses=problem_responses(404))
def get_request(session: DbSession, caller: Reader, clock: ClockDep,
                request_id: uuid.UUID) -> RequestRead:
    """A request with its lines, policy decisions, approval steps and approvals. Visible to
    its requester, its beneficiary, the approvers of its steps (and their current delegates)
    and readers of all requests; 404 for anyone else."""
    request = service.get_visible(session, caller=caller, request_id=request_id, clock=clock)
    return service.request_view(session, request)


@router.post("/{request_id}/submit", response_model=RequestRead,
             responses=problem_responses(404, 409))
def submit_request(session: DbSession, caller: Creator, clock: ClockDep, window: WindowDays,
                   request_id: uuid.UUID) -> RequestRead:
    """Submit a draft (by its requester), with every check of a direct submission."""
    request = service.submit_request(session, request_id=request_id, caller=caller,
                                     window_days=window, clock=clock)
    return service.request_view(session, request)


@router.post("/{request_id}/cancel", response_model=RequestRead,
             responses=problem_responses(404, 409))
def cancel_request(session: DbSession, caller: Creator, clock: ClockDep,
                   request_id: uuid.UUID, cancel_in: RequestCancel) -> RequestRead:
    """Withdraw a request (its requester or beneficiary) while it is a draft, submitted or
    pending approval: pending lines and their open steps are cancelled. 409 afterwards."""
    request = service.cancel_request(session, request_id=request_id, caller=caller,
                                     reason=cancel_in.reason, clock=clock)
    return service.request_view(session, request)
