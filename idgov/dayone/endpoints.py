"""/day-one: redeeming a joiner's one-time link. No login: the token is the credential, sent
in the body (never in a URL, which access logs would keep) and never logged or audited.

- ``POST /day-one/lookup``: who the link is for and what it covers;
- ``POST /day-one/redeem``: set the password / receive the passes, once.

Statuses: 404 unknown token, 410 used or expired, 409 before the link's ``not_before``, 422
password policy, 503 a target failed (the link stays open; the body's ``applications`` say
what was done where).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from idgov.config import Settings
from idgov.dayone import redeem as flow
from idgov.dayone.schemas import (
    DayOneApplication,
    LookupOut,
    RedeemedApplication,
    RedeemIn,
    RedeemOut,
    TemporaryAccessPassOut,
    TokenIn,
)
from idgov.web.deps import ClockDep, Ctx, DbSession
from idgov.web.problems import problem
from idgov.web.schemas import ProblemDetail

router = APIRouter(prefix="/day-one", tags=["day-one"])


def _settings(ctx: Ctx) -> Settings:
    return ctx.settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {404: "No such link", 409: "The link does not work yet",
                    410: "The link was used or has expired", 422: "Invalid input",
                    503: "A target failed; the link stays open"}
    return {code: {"model": ProblemDetail, "description": descriptions[code],
                   "content": {"application/problem+json": {}}} for code in codes}


def _gone(error: flow.LinkGone) -> JSONResponse:
    return problem(410, error.title, error.detail, type_="day-one-link-gone")


def _application(covered: flow.Covered) -> dict[str, Any]:
    return {"application_id": covered.application.id, "name": covered.application.name,
            "method": covered.method, "username": covered.username}


@router.post("/lookup", response_model=LookupOut, responses=_problems(404, 410, 422))
def lookup(session: DbSession, clock: ClockDep, settings: SettingsDep,
           body: TokenIn) -> LookupOut | JSONResponse:
    """Who the link is for, the applications it covers and how access reaches the person on
    each, and when it works."""
    try:
        view = flow.lookup(session, token=body.token, clock=clock)
    except flow.LinkGone as error:
        return _gone(error)
    return LookupOut(
        link_id=view.link.id, display_name=view.identity.display_name,
        not_before=view.link.not_before, expires_at=view.link.expires_at,
        applications=[DayOneApplication.model_validate(_application(c)) for c in view.covered],
        password_min_length=int(flow.settings_value(settings, "day_one_password_min_length",
                                                     12)))


@router.post("/redeem", response_model=RedeemOut,
             responses=_problems(404, 409, 410, 422, 503))
def redeem(session: DbSession, clock: ClockDep, settings: SettingsDep,
           body: RedeemIn) -> RedeemOut | JSONResponse:
    """Set the person's password on the password applications, issue temporary access
    passes on the others (shown in this answer only), and close the link. Single use."""
    password = body.password.get_secret_value() if body.password is not None else None
    try:
        view = flow.redeem(session, token=body.token, password=password, settings=settings,
                           clock=clock)
    except flow.LinkGone as error:
        return _gone(error)
    if not view.complete:
        return problem(503, "Target unavailable", "first access could not be set up on every "
                       "application; the link stays open, try again later",
                       type_="day-one-target-unavailable", link_id=str(view.link.id),
                       applications=[{**_application(o.covered), "application_id":
                                      str(o.covered.application.id), "outcome": o.outcome,
                                      "error_category": o.error_category, "note": o.note}
                                     for o in view.outcomes])
    items = []
    for o in view.outcomes:
        tap = o.access_pass
        items.append(RedeemedApplication(
            **_application(o.covered), outcome=o.outcome, note=o.note,
            temporary_access_pass=None if tap is None else TemporaryAccessPassOut(
                value=tap.value, starts_at=tap.starts_at, expires_at=tap.expires_at,
                usable_once=tap.usable_once)))
    assert view.link.redeemed_at is not None
    return RedeemOut(link_id=view.link.id, display_name=view.identity.display_name,
                     redeemed_at=view.link.redeemed_at, applications=items)
