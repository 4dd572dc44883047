"""Administrator pages of the HR feed (/ui/admin/hr): the feed runs with their counts and
row errors, a run's changes (for a held run: the diff to look at), and confirming or
rejecting a held run with a note.

Same services and capabilities as ``/hr/runs``: reading needs ``hr:read``, confirming and
rejecting ``hr:decide`` (administrators); anyone else gets the 403 page; a run that is not
held answers the 409 page, as the API does.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import RedirectResponse, Response

from idgov.auth.caller import Caller
from idgov.errors import InvalidInput
from idgov.lifecycle import feed, service
from idgov.lifecycle.schemas import DecisionIn, FeedChangeFilter, FeedRunFilter
from idgov.ui import lookup
from idgov.ui.deps import CheckedForm, page_require, page_router
from idgov.ui.lookup import WorkSession
from idgov.ui.registry import NavItem, register_nav
from idgov.ui.render import field_errors, render
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, DbSession

router = page_router(prefix="/ui/admin/hr")
register_nav(NavItem(key="admin-hr", label="HR feed", href="/ui/admin/hr",
                     capabilities=("hr:read",), order=620))

Reader = Annotated[Caller, Depends(page_require("hr:read"))]
Decider = Annotated[Caller, Depends(page_require("hr:decide"))]
STATES = ("held", "applied", "rejected", "failed", "running")


@router.get("")
def runs(request: Request, session: DbSession, caller: Reader) -> Response:
    """Feed runs, held ones first, then newest first."""
    chosen = lookup.query_values(request.query_params, ("state",))
    found = service.list_runs(session, filters=lookup.parsed(
        FeedRunFilter, {**chosen, "limit": 500})).items
    ordered = sorted(found, key=lambda r: (r.state != "held", -r.started_at.timestamp()))
    return render(request, "admin/hr_runs.html", title="HR feed runs", runs=ordered,
                  chosen=chosen, states=STATES)


def _run_page(request: Request, session: DbSession, caller: Caller, run_id: uuid.UUID, *,
              errors: dict[str, str] | None = None, note: str = "",
              status_code: int = 200) -> Response:
    run = service.get_run(session, run_id=run_id)
    changes = service.list_changes(session, run_id=run_id,
                                   filters=FeedChangeFilter(limit=500)).items
    return render(request, "admin/hr_run.html", status_code=status_code,
                  title=f"HR feed run {run.file_name or run.id}", run=run, changes=changes,
                  may_decide=run.state == "held" and caller.can("hr:decide"),
                  errors=errors or {}, note=note)


@router.get("/runs/{run_id}")
def run_page(request: Request, session: DbSession, caller: Reader,
             run_id: uuid.UUID) -> Response:
    """One run: counts, row errors, hold reason, and its changes (before and after)."""
    return _run_page(request, session, caller, run_id)


def _decision(form: CheckedForm) -> DecisionIn:
    return lookup.parsed(DecisionIn, {"note": lookup.text(form, "note") or None})


@router.post("/runs/{run_id}/confirm")
def confirm(request: Request, session: WorkSession, caller: Decider, clock: ClockDep,
            run_id: uuid.UUID, form: CheckedForm) -> Response:
    """Apply a held run's changes as listed."""
    try:
        body = _decision(form)
    except InvalidInput as exc:
        return _run_page(request, session, caller, run_id, errors=field_errors(exc),
                         note=lookup.text(form, "note"), status_code=422)
    run = feed.confirm_run(session, run_id=run_id, note=body.note, actor=caller.actor,
                           clock=clock)
    flash(request, f"Run confirmed: its changes are applied ({run.state}).", "success")
    return RedirectResponse(f"/ui/admin/hr/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/reject")
def reject(request: Request, session: WorkSession, caller: Decider, clock: ClockDep,
           run_id: uuid.UUID, form: CheckedForm) -> Response:
    """Refuse a held run: nothing of it applies."""
    try:
        body = _decision(form)
    except InvalidInput as exc:
        return _run_page(request, session, caller, run_id, errors=field_errors(exc),
                         note=lookup.text(form, "note"), status_code=422)
    feed.reject_run(session, run_id=run_id, note=body.note, actor=caller.actor, clock=clock)
    flash(request, "Run rejected: nothing of it applies.", "success")
    return RedirectResponse(f"/ui/admin/hr/runs/{run_id}", status_code=303)
