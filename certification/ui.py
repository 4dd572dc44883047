"""Web pages of the certification inbox (/ui/certification): the campaigns a person reviews
in, a campaign's items grouped by person with filters, single and bulk decisions,
reassignment, sign-off and progress.

Every page calls the same service functions as ``/certification`` (certification.review,
certification.campaigns) with the signed-in caller, so a page refuses exactly what the API
refuses: an auditor reads every campaign and posting a decision answers the 403 page; a
person sees only the items they review. Field errors (a mandatory comment) are shown at the
field of the item or of the bulk form, and nothing changes.

Filters are the API's item filters (decision, risk, application, SoD, privileged, search)
plus ``unused``: items whose account was last signed in to (as generation read it from the
target) longer ago than ``cert_unused_days``; that one is applied to the page shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from certification import campaigns, review
from certification.models import ReviewItem
from certification.review import ItemView
from certification.review_rules import reads_all
from certification.schemas_campaigns import CampaignFilter
from certification.schemas_review import ItemFilter
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.errors import Conflict, FieldError, InvalidInput
from idgov.models.application import Application
from idgov.models.identity import Identity
from idgov.ui.deps import CheckedForm, PageRoute, page_require
from idgov.ui.lookup import WorkSession
from idgov.ui.render import field_errors, render
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, Ctx, DbSession

router = APIRouter(prefix="/ui/certification", route_class=PageRoute, include_in_schema=False)

# The API's dependencies, for pages: readers see, deciders decide (auditors: 403).
Reader = Annotated[Caller, Depends(page_require("certification:review", "certification:read",
                                                "certification:admin"))]
Decider = Annotated[Caller, Depends(page_require("certification:review",
                                                 "certification:admin"))]

FILTER_KEYS = ("decision", "risk", "application_id", "sod", "privileged", "q")
PAGE_SIZE = 500


@dataclass
class PersonGroup:
    """The items of one person (or, in a composition campaign, of one role)."""

    name: str
    items: list[ItemView]


def _form_text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _filters_of(params: Any) -> tuple[dict[str, str], bool]:
    """The non-empty filter values of a query string (or the ``back`` of a form)."""
    chosen = {k: str(params.get(k)).strip() for k in FILTER_KEYS
              if params.get(k) not in (None, "")}
    return chosen, params.get("unused") in ("1", "true", "on")


def _item_filter(chosen: dict[str, str]) -> ItemFilter:
    try:
        return ItemFilter.model_validate({**chosen, "limit": PAGE_SIZE})
    except ValidationError as exc:
        raise InvalidInput("the filters are not valid", errors=[
            FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()
        ]) from exc


def _last_sign_ins(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    """The last sign-in generation recorded in each item's context."""
    if not ids:
        return {}
    rows = session.execute(select(ReviewItem.id, ReviewItem.context)
                           .where(ReviewItem.id.in_(ids)))
    return {item_id: (context or {}).get("last_sign_in") for item_id, context in rows}


def _unused(session: Session, views: list[ItemView], *, now: datetime,
            days: int) -> list[ItemView]:
    """Items whose known last sign-in is older than ``days``."""
    seen = _last_sign_ins(session, [v.item.id for v in views])
    cutoff = now - timedelta(days=days)
    kept = []
    for view in views:
        value = seen.get(view.item.id)
        if value and datetime.fromisoformat(str(value)) < cutoff:
            kept.append(view)
    return kept


def _grouped(views: list[ItemView]) -> list[PersonGroup]:
    groups: dict[str, PersonGroup] = {}
    for view in views:
        key = str(view.item.identity_id or view.item.role_id)
        name = view.identity_name or view.role_name or "—"
        groups.setdefault(key, PersonGroup(name=name, items=[])).items.append(view)
    return list(groups.values())


def _applications(session: Session, campaign_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The applications a campaign's items belong to, for the filter."""
    in_campaign = select(ReviewItem.application_id).where(
        ReviewItem.campaign_id == campaign_id).distinct()
    rows = session.execute(select(Application.id, Application.name)
                           .where(Application.id.in_(in_campaign)).order_by(Application.name))
    return [(row[0], row[1]) for row in rows]


def _back_url(campaign_id: uuid.UUID, back: str) -> str:
    url = f"/ui/certification/campaigns/{campaign_id}"
    return f"{url}?{back}" if back else url


def _campaign_page(request: Request, session: Session, *, caller: Caller, clock: Clock,
                   unused_days: int, campaign_id: uuid.UUID, params: Any,
                   errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                   status_code: int = 200) -> Response:
    campaign = campaigns.get_campaign(session, campaign_id=campaign_id, caller=caller)
    chosen, unused = _filters_of(params)
    filter_errors: dict[str, str] = {}
    try:
        page = review.list_items(session, caller=caller, campaign_id=campaign_id,
                                 filters=_item_filter(chosen))
        views, more = list(page.items), page.next_cursor is not None
    except InvalidInput as exc:
        filter_errors, views, more = field_errors(exc), [], False
        status_code = 422
    if unused:
        views = _unused(session, views, now=clock.now(), days=unused_days)
    progress = review.progress(session, campaign_id=campaign_id, caller=caller)
    back = urlencode({**chosen, **({"unused": "1"} if unused else {})})
    may_decide = (campaign.state == "active" and (caller.can("certification:admin") or (
        caller.can("certification:review") and caller.identity_id is not None)))
    decides_all = caller.can("certification:admin")
    reads = reads_all(caller)
    decidable = {v.item.id for v in views if decides_all or not reads
                 or v.item.reviewer_id == caller.identity_id}
    mine = next((line for line in progress.reviewers
                 if line.reviewer_id is not None and line.reviewer_id == caller.identity_id),
                None)
    return render(request, "certification/campaign.html", status_code=status_code,
                  title=campaign.name, campaign=campaign, groups=_grouped(views), more=more,
                  progress=progress, mine=mine, chosen=chosen, unused=unused,
                  unused_days=unused_days, back=back, may_decide=may_decide, decidable=decidable,
                  applications=_applications(session, campaign_id),
                  errors={**filter_errors, **(errors or {})}, values=values or {})


@router.get("", name="certification_inbox")
def inbox(request: Request, session: DbSession, caller: Reader) -> Response:
    """The campaigns the caller reviews in (every campaign for administrators and
    auditors), newest states first."""
    page = campaigns.list_campaigns(session, caller=caller,
                                    filters=CampaignFilter(limit=200))
    order = {"active": 0, "draft": 1, "closed": 2, "cancelled": 3}
    found = sorted(page.items, key=lambda c: (order.get(c.state, 9), c.deadline_at))
    return render(request, "certification/inbox.html", title="Certification inbox",
                  campaigns=found)


@router.get("/campaigns/{campaign_id}", name="certification_campaign")
def campaign_page(request: Request, session: DbSession, caller: Reader, clock: ClockDep,
                  ctx: Ctx, campaign_id: uuid.UUID) -> Response:
    """A campaign's items (the caller's, or all for readers), grouped by person, with the
    filters, the decision forms and the progress."""
    return _campaign_page(request, session, caller=caller, clock=clock,
                          unused_days=ctx.settings.cert_unused_days, campaign_id=campaign_id,
                          params=request.query_params)


def _refused(request: Request, session: Session, exc: InvalidInput, *, caller: Caller,
             clock: Clock, ctx: Ctx, campaign_id: uuid.UUID, back: str, prefix: str,
             values: dict[str, str]) -> Response:
    """The campaign page again, with the error at the form's field (nothing changed)."""
    session.rollback()
    errors = {f"{prefix}{k}": v for k, v in field_errors(exc).items()}
    errors.setdefault(f"{prefix}form", exc.detail)
    params = {k: v[-1] for k, v in parse_qs(back).items()}
    return _campaign_page(request, session, caller=caller, clock=clock,
                          unused_days=ctx.settings.cert_unused_days, campaign_id=campaign_id,
                          params=params, errors=errors, values=values, status_code=422)


@router.post("/items/{item_id}/decision")
def decide(request: Request, session: WorkSession, caller: Decider, clock: ClockDep, ctx: Ctx,
           item_id: uuid.UUID, form: CheckedForm) -> Response:
    """Certify, revoke (with a comment, mandatory for privileged access) or undo one item."""
    decision, comment = _form_text(form, "decision"), _form_text(form, "comment")
    back = _form_text(form, "back")
    view = review.get_item(session, caller=caller, item_id=item_id)
    try:
        review.decide(session, item_id=item_id, decision=decision, comment=comment or None,
                      caller=caller, clock=clock)
    except InvalidInput as exc:
        return _refused(request, session, exc, caller=caller, clock=clock, ctx=ctx,
                        campaign_id=view.item.campaign_id, back=back, prefix=f"{item_id}.",
                        values={f"{item_id}.comment": comment})
    done = {"certify": "Certified", "revoke": "Revoked", "pending": "Undone"}[decision]
    flash(request, f"{done}: {view.described}.", "success")
    return RedirectResponse(_back_url(view.item.campaign_id, back), status_code=303)


@router.post("/campaigns/{campaign_id}/bulk")
def bulk(request: Request, session: WorkSession, caller: Decider, clock: ClockDep, ctx: Ctx,
         campaign_id: uuid.UUID, form: CheckedForm) -> Response:
    """One decision over the items ticked on the page."""
    decision, comment = _form_text(form, "decision"), _form_text(form, "comment")
    back = _form_text(form, "back")
    try:
        ids = [uuid.UUID(str(v)) for v in form.getlist("item_ids")]
        if not ids:
            raise InvalidInput("select at least one item", errors=[
                FieldError("item_ids", "select at least one item")])
        decided = review.bulk_decide(session, campaign_id=campaign_id,
                                     selection=review.BulkSelection(item_ids=ids),
                                     decision=decision, comment=comment or None,
                                     caller=caller, clock=clock)
    except ValueError as exc:  # a tampered id
        raise InvalidInput("the selection is not valid") from exc
    except InvalidInput as exc:
        return _refused(request, session, exc, caller=caller, clock=clock, ctx=ctx,
                        campaign_id=campaign_id, back=back, prefix="bulk.",
                        values={"bulk.comment": comment})
    verb = {"certify": "certified", "revoke": "revoked", "pending": "set back to pending"}
    flash(request, f"{decided} items {verb.get(decision, decision)}.", "success")
    return RedirectResponse(_back_url(campaign_id, back), status_code=303)


def _person(session: Session, text: str) -> uuid.UUID:
    """The new reviewer named by e-mail address (or id)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    found = session.scalar(select(Identity.id).where(Identity.email == text.lower())) \
        if text else None
    if found is None:
        raise InvalidInput("no such person", errors=[
            FieldError("to_identity_id", "give the e-mail address of an active person")])
    return found


@router.post("/items/{item_id}/reassign")
def reassign(request: Request, session: WorkSession, caller: Decider, clock: ClockDep,
             ctx: Ctx, item_id: uuid.UUID, form: CheckedForm) -> Response:
    """Give an item to another reviewer, named by e-mail address."""
    back, to = _form_text(form, "back"), _form_text(form, "to")
    comment = _form_text(form, "comment")
    view = review.get_item(session, caller=caller, item_id=item_id)
    try:
        moved = review.reassign(session, item_id=item_id, to_identity_id=_person(session, to),
                                comment=comment or None, caller=caller, clock=clock)
    except InvalidInput as exc:
        return _refused(request, session, exc, caller=caller, clock=clock, ctx=ctx,
                        campaign_id=view.item.campaign_id, back=back,
                        prefix=f"{item_id}.", values={f"{item_id}.to": to})
    flash(request, f"Reassigned: {moved.described}.", "success")
    return RedirectResponse(_back_url(view.item.campaign_id, back), status_code=303)


@router.post("/campaigns/{campaign_id}/sign-off")
def sign_off(request: Request, session: WorkSession, caller: Decider, clock: ClockDep,
             campaign_id: uuid.UUID, form: CheckedForm) -> Response:
    """Close the caller's part: their decisions become final and take effect."""
    back = _form_text(form, "back")
    try:
        outcome = review.sign_off_outcome(session, campaign_id=campaign_id, caller=caller,
                                          clock=clock)
    except Conflict as exc:  # items still pending, or signed off already: say so here
        session.rollback()
        flash(request, f"Not signed off: {exc.detail}", "error")
        return RedirectResponse(_back_url(campaign_id, back), status_code=303)
    applied = ", ".join(f"{n} {what}" for what, n in sorted(outcome.applied.items()))
    closed = " The campaign is closed." if outcome.campaign_state == "closed" else ""
    flash(request, f"Signed off ({applied or 'nothing to apply'}).{closed}", "success")
    return RedirectResponse(_back_url(campaign_id, back), status_code=303)
