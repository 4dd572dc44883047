"""Web pages for administrators of certification (/ui/certification/manage): every
campaign with its state and counts, a form that creates a simple campaign (kind, optional
applications, deadline), launch and cancel.

The pages call certification.campaigns as ``/certification/campaigns`` does, behind the
same capability (``certification:admin``): anyone else gets the 403 page, and a POST is
refused the same way.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from certification import campaigns
from certification.schemas_campaigns import CampaignCreate, CampaignFilter
from idgov.auth.caller import Caller
from idgov.errors import FieldError, InvalidInput
from idgov.models.application import Application
from idgov.ui.deps import CheckedForm, PageRoute, page_require
from idgov.ui.lookup import WorkSession
from idgov.ui.render import field_errors, render
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, DbSession

router = APIRouter(prefix="/ui/certification/manage", route_class=PageRoute,
                   include_in_schema=False)

Admin = Annotated[Caller, Depends(page_require("certification:admin"))]
KINDS = ("manager", "owner", "application", "privileged")


def _page(request: Request, session: Session, *, errors: dict[str, str] | None = None,
          values: dict[str, object] | None = None, status_code: int = 200) -> Response:
    found = campaigns.list_campaigns(session, caller=None, filters=CampaignFilter(limit=200))
    apps = session.execute(select(Application.id, Application.name)
                           .order_by(Application.name)).all()
    order = {"draft": 0, "active": 1, "closed": 2, "cancelled": 3}
    return render(request, "certification/manage.html", status_code=status_code,
                  title="Campaigns", kinds=KINDS, applications=[(a, n) for a, n in apps],
                  campaigns=sorted(found.items, key=lambda c: (order.get(c.state, 9), c.name)),
                  errors=errors or {}, values=values or {})


@router.get("")
def manage(request: Request, session: DbSession, caller: Admin) -> Response:
    """Every campaign, and the form that creates one."""
    return _page(request, session)


def _deadline(text: str) -> datetime:
    """A date (YYYY-MM-DD): the end of that day, UTC."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        raise InvalidInput("the deadline is not a date", errors=[
            FieldError("deadline_at", "give a date as YYYY-MM-DD")]) from exc
    return datetime.combine(day, time(23, 59), tzinfo=UTC)


@router.post("")
def create(request: Request, session: WorkSession, caller: Admin, clock: ClockDep,
           form: CheckedForm) -> Response:
    """A draft campaign from the form; its errors are shown at their fields."""
    name, kind = str(form.get("name") or "").strip(), str(form.get("kind") or "")
    deadline = str(form.get("deadline_at") or "").strip()
    app_ids = [str(v) for v in form.getlist("application_ids")]
    values: dict[str, object] = {"name": name, "kind": kind, "deadline_at": deadline,
                                 "application_ids": app_ids}
    try:
        try:
            body = CampaignCreate.model_validate({
                "name": name, "kind": kind, "deadline_at": _deadline(deadline),
                "scope": {"application_ids": app_ids},
                "fallbacks": ["manager_of_manager"]})
        except ValidationError as exc:
            raise InvalidInput("the campaign is not valid", errors=[
                FieldError(".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()]) from exc
        made = campaigns.create_campaign(session, campaign_in=body, actor=caller.actor,
                                         clock=clock)
    except InvalidInput as exc:
        session.rollback()
        errors = field_errors(exc)
        errors.setdefault("form", exc.detail)
        return _page(request, session, errors=errors, values=values, status_code=422)
    flash(request, f"Campaign {made.name} created as a draft.", "success")
    return RedirectResponse("/ui/certification/manage", status_code=303)


@router.post("/{campaign_id}/launch")
def launch(request: Request, session: WorkSession, caller: Admin, clock: ClockDep,
           campaign_id: uuid.UUID, form: CheckedForm) -> Response:
    """Generate the review items of a draft and make it active."""
    made = campaigns.launch(session, campaign_id=campaign_id, actor=caller.actor, clock=clock)
    flash(request, f"Campaign {made.name} launched: {made.counts.get('items', 0)} items.",
          "success")
    return RedirectResponse("/ui/certification/manage", status_code=303)


@router.post("/{campaign_id}/cancel")
def cancel(request: Request, session: WorkSession, caller: Admin, clock: ClockDep,
           campaign_id: uuid.UUID, form: CheckedForm) -> Response:
    """Cancel a draft or active campaign (nothing is remediated)."""
    reason = str(form.get("reason") or "").strip() or None
    made = campaigns.cancel_campaign(session, campaign_id=campaign_id, reason=reason,
                                     actor=caller.actor, clock=clock)
    flash(request, f"Campaign {made.name} cancelled.", "success")
    return RedirectResponse("/ui/certification/manage", status_code=303)
