"""Approver pages: the inbox of waiting steps with the policy decision, SoD context and
risk in view; approve or reject with a comment; delegation settings. The same services
and row rules as ``/approvals`` and ``/delegations``: a step one may not see is a 404
page, a decision one may not take a 403 page, and nothing changes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from idgov.approvals import delegations, service
from idgov.approvals.schemas import (
    ApprovalFilter,
    ApprovalItem,
    DecisionIn,
    DelegationCreate,
    DelegationFilter,
)
from idgov.auth.caller import Caller
from idgov.errors import FieldError, Forbidden, InvalidInput
from idgov.requests.service import decide_step
from idgov.ui import registry
from idgov.ui.deps import CheckedForm, PageSession, page_require, page_router
from idgov.ui.render import field_errors, render
from idgov.ui.repository import names_of, people
from idgov.ui.session import flash
from idgov.web.deps import ClockDep

router = page_router()

ApprovalReader = Annotated[Caller, Depends(page_require("approvals:decide", "approvals:read"))]
Decider = Annotated[Caller, Depends(page_require("approvals:decide"))]
DelegationReader = Annotated[Caller, Depends(page_require("delegations:write",
                                                          "delegations:read"))]
DelegationWriter = Annotated[Caller, Depends(page_require("delegations:write"))]
Cursor = Annotated[str | None, Query(max_length=200)]


def _people_of(items: list[ApprovalItem]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for it in items:
        found |= {it.request.requester_id, it.request.beneficiary_id}
        found |= {a.identity_id for a in it.step.approvers}
        found |= {a.approver_id for a in it.step.approvals}
    return found


@router.get("/approvals")
def inbox(request: Request, session: PageSession, caller: ApprovalReader, clock: ClockDep,
          cursor: Cursor = None) -> Response:
    """Waiting steps the caller may decide now (their own and as a delegate)."""
    filters = ApprovalFilter(limit=25, cursor=cursor, state="waiting")
    if caller.can("approvals:read") and caller.identity_id is not None:
        filters = ApprovalFilter(limit=25, cursor=cursor, state="waiting",
                                 identity_id=caller.identity_id)
    page = service.list_approvals(session, caller=caller, filters=filters, clock=clock)
    items = [service.item_view(session, s) for s in page.items]
    next_url = f"/ui/approvals?cursor={page.next_cursor}" if page.next_cursor else None
    return render(request, "inbox.html", title="Approvals", items=items,
                  names=names_of(session, _people_of(items)), next_url=next_url)


def _show_step(request: Request, session: Session, *, caller: Caller, step_id: uuid.UUID,
               clock: Any, errors: dict[str, str], detail: str | None = None,
               comment: str = "", status_code: int = 200) -> Response:
    step = service.get_visible(session, caller=caller, step_id=step_id, clock=clock)
    item = service.item_view(session, step)
    names = names_of(session, _people_of([item]))
    can_decide = (caller.can("approvals:decide") and item.step.state == "waiting"
                  and caller.identity_id is not None)
    return render(request, "approval.html", status_code=status_code,
                  title=f"Approve {item.line.number}", it=item, names=names,
                  decision=item.line.decision, can_decide=can_decide, errors=errors,
                  detail=detail, comment=comment)


@router.get("/approvals/{step_id:uuid}")
def approval_page(request: Request, session: PageSession, caller: ApprovalReader,
                  clock: ClockDep, step_id: uuid.UUID) -> Response:
    """One step with its line, request, policy decision and SoD context."""
    return _show_step(request, session, caller=caller, step_id=step_id, clock=clock,
                      errors={})


@router.post("/approvals/{step_id:uuid}/decision")
def decide(request: Request, session: PageSession, caller: Decider, clock: ClockDep,
           form: CheckedForm, step_id: uuid.UUID) -> Response:
    """Approve or reject (a rejection needs a comment), through the service of
    ``POST /approvals/{id}/decision``."""
    comment = str(form.get("comment") or "").strip()
    try:
        try:
            decision_in = DecisionIn.model_validate({"decision": form.get("decision"),
                                                     "comment": comment or None})
        except ValidationError as exc:
            raise InvalidInput("the decision is invalid", errors=[
                FieldError(".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()]) from exc
        result = decide_step(session, step_id=step_id, caller=caller,
                             decision=decision_in.decision, comment=decision_in.comment,
                             clock=clock)
    except InvalidInput as exc:
        session.rollback()
        return _show_step(request, session, caller=caller, step_id=step_id, clock=clock,
                          errors=field_errors(exc), detail=exc.detail, comment=comment,
                          status_code=422)
    verb = "approved" if decision_in.decision == "approve" else "rejected"
    flash(request, f"You {verb} the step. {result.number} is now "
                   f"{result.state.replace('_', ' ')}.", "success")
    return RedirectResponse("/ui/approvals", status_code=303)


@router.get("/delegations")
def delegation_page(request: Request, session: PageSession, caller: DelegationReader,
                    clock: ClockDep, q: Annotated[str | None, Query(max_length=100)] = None
                    ) -> Response:
    """The delegations the caller gave or received, and a form to give one."""
    return _show_delegations(request, session, caller=caller, clock=clock, q=q, errors={},
                             values={})


def _show_delegations(request: Request, session: Session, *, caller: Caller, clock: Any,
                      q: str | None, errors: dict[str, str], values: dict[str, str],
                      detail: str | None = None, status_code: int = 200) -> Response:
    page = delegations.list_delegations(session, caller=caller, clock=clock,
                                        filters=DelegationFilter(limit=100))
    rows = list(page.items)
    names = names_of(session, {d.delegator_id for d in rows} | {d.delegate_id for d in rows})
    candidates = [(str(p.id), f"{p.name} ({p.department or p.email or ''})")
                  for p in people(session, q=q, limit=200) if p.id != caller.identity_id]
    now: datetime = clock.now()
    return render(request, "delegations.html", status_code=status_code, title="Delegations",
                  rows=rows, names=names, candidates=candidates, q=q or "", errors=errors,
                  values=values, detail=detail, now=now,
                  default_end=(now + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M"))


def _aware(text: str) -> str:
    """A datetime-local input (no zone) read as UTC, the service's time zone."""
    return text + ":00+00:00" if text and len(text) == 16 else text


@router.post("/delegations")
def create_delegation(request: Request, session: PageSession, caller: DelegationWriter,
                      clock: ClockDep, form: CheckedForm) -> Response:
    """Let someone decide your approvals for a while (``POST /delegations``)."""
    if caller.identity_id is None:
        raise Forbidden("only a person can do this")
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    try:
        try:
            delegation_in = DelegationCreate.model_validate({
                "delegate_id": values.get("delegate_id") or None,
                "ends_at": _aware(values.get("ends_at", "")) or None,
                "max_risk": values.get("max_risk") or "medium",
                "reason": values.get("reason") or None})
        except ValidationError as exc:
            raise InvalidInput("the delegation is invalid", errors=[
                FieldError(".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()]) from exc
        delegations.create_delegation(session, delegator_id=caller.identity_id,
                                      delegation_in=delegation_in, actor=caller.actor,
                                      clock=clock)
    except InvalidInput as exc:
        session.rollback()
        return _show_delegations(request, session, caller=caller, clock=clock, q=None,
                                 errors=field_errors(exc), values=values, detail=exc.detail,
                                 status_code=422)
    flash(request, "Delegation saved.", "success")
    return RedirectResponse("/ui/delegations", status_code=303)


@router.post("/delegations/{delegation_id:uuid}/revoke")
def revoke_delegation(request: Request, session: PageSession, caller: DelegationWriter,
                      clock: ClockDep, form: CheckedForm, delegation_id: uuid.UUID) -> Response:
    """End one of your delegations now."""
    delegations.revoke_delegation(session, delegation_id=delegation_id, caller=caller,
                                  clock=clock)
    flash(request, "Delegation revoked.", "success")
    return RedirectResponse("/ui/delegations", status_code=303)


registry.register_nav(registry.NavItem(key="approvals", label="Approvals",
                                       href="/ui/approvals", capabilities=("approvals:decide",),
                                       order=200, person_only=True))
registry.register_nav(registry.NavItem(key="delegations", label="Delegations",
                                       href="/ui/delegations",
                                       capabilities=("delegations:write",), order=210,
                                       person_only=True))
