"""Sign in and out: OIDC through the configured issuer, or in the demo as any person.

The demo sign-in (no password) exists only when ``app.state.ui_demo_sign_in`` is on (see
``idgov.ui.app.demo_sign_in_allowed``); otherwise its routes answer 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request
from starlette.responses import RedirectResponse, Response

from idgov.errors import InvalidInput, NotFound
from idgov.ui import oidc_login, repository
from idgov.ui.deps import (
    CheckedForm,
    OptionalCaller,
    PageSession,
    page_router,
    person_caller,
    principal_caller,
    safe_next,
)
from idgov.ui.render import render
from idgov.ui.session import flash, sign_in, sign_out
from idgov.web.deps import ClockDep, Ctx

router = page_router()


def _demo_on(request: Request) -> bool:
    return bool(getattr(request.app.state, "ui_demo_sign_in", False))


@router.get("/sign-in", name="ui_sign_in")
def sign_in_page(request: Request, session: PageSession, ctx: Ctx, caller: OptionalCaller,
                 q: Annotated[str | None, Query(max_length=100)] = None,
                 next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """Sign in: the organisation's issuer, and in the demo a list of people to be."""
    demo = _demo_on(request)
    return render(
        request, "signin.html", title="Sign in", next=safe_next(next), q=q or "",
        oidc=oidc_login.configured(ctx.settings),
        personas=repository.personas(session) if demo else [],
        people=repository.people(session, q=q) if demo else [],
        principals=repository.principals(session) if demo else [],
    )


@router.post("/sign-in/demo")
def demo_sign_in(request: Request, session: PageSession, clock: ClockDep,
                 form: CheckedForm) -> Response:
    """Sign in as a person (or a service principal) of the demo, without a password."""
    if not _demo_on(request):
        raise NotFound("the demo sign-in is not available on this service")
    kind, _, raw_id = str(form.get("subject") or "").partition(":")
    try:
        subject_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise InvalidInput("choose a person to sign in as") from exc
    if kind == "principal":
        caller = principal_caller(session, subject_id)
    else:
        kind = "identity"
        caller = person_caller(session, subject_id)
    sign_in(request, kind=kind, subject_id=subject_id, via="demo", now=clock.now())
    flash(request, f"Signed in as {caller.name}.")
    return RedirectResponse(safe_next(form.get("next")), status_code=303)


@router.get("/sign-in/oidc")
async def oidc_sign_in(request: Request,
                       next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """Start the authorization-code flow at the configured issuer."""
    return await oidc_login.begin(request, next_path=safe_next(next))


@router.get("/auth/callback", name="ui_oidc_callback")
async def oidc_callback(request: Request) -> Response:
    """The issuer sends the browser back here with a code."""
    identity_id, next_path = await oidc_login.finish(request)
    clock = request.app.state.ctx.clock
    sign_in(request, kind="identity", subject_id=identity_id, via="oidc", now=clock.now())
    return RedirectResponse(safe_next(next_path), status_code=303)


@router.post("/sign-out")
def sign_out_now(request: Request, _form: CheckedForm) -> Response:
    """End the session (the issuer's own session, if any, is the issuer's)."""
    sign_out(request)
    flash(request, "You are signed out.")
    return RedirectResponse("/ui/sign-in", status_code=303)
