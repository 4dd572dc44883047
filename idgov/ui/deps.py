"""Page dependencies: the signed-in caller, CSRF-checked forms, the page route class.

The caller of a page is built exactly as the API builds a person's caller from an OIDC
token (``idgov.auth.roles.person_roles`` + ``Caller.build(kind="oidc")``), so capabilities
and row rules are identical: pages call the same services with the same ``Caller``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from idgov import errors
from idgov.auth.caller import Caller
from idgov.auth.oidc import NO_ACTIVE_IDENTITY
from idgov.auth.roles import person_roles
from idgov.models.auth import ServicePrincipal
from idgov.models.identity import Identity
from idgov.ui.render import error_page
from idgov.ui.session import CSRF_FIELD, csrf_valid, sign_out, signed_in
from idgov.web.deps import get_session
from idgov.web.problems import status_for

SIGN_IN_PATH = "/ui/sign-in"

# The unit of work of a page, committed BEFORE the response is sent (scope "function"):
# the browser follows a POST's redirect at once, and the next page must see what the POST
# did. (FastAPI's default for a dependency with yield, scope "request", commits after the
# response is sent; the API's DbSession has that default.)
PageSession = Annotated[Session, Depends(get_session, scope="function")]


class SignedOut(errors.Unauthenticated):
    """No one is signed in (or the session no longer names an active person)."""


def person_caller(session: Session, identity_id: uuid.UUID) -> Caller:
    """The caller of an active person, as the OIDC resolver builds it; Forbidden otherwise."""
    identity = session.get(Identity, identity_id)
    found = person_roles(session, identity_id)
    if identity is None or found is None or not found.active:
        raise errors.Forbidden(NO_ACTIVE_IDENTITY)
    return Caller.build(kind="oidc", name=identity.display_name, roles=found.roles,
                        identity_id=identity.id)


def principal_caller(session: Session, principal_id: uuid.UUID) -> Caller:
    """A service principal signed in through the demo sign-in (its own roles)."""
    principal = session.get(ServicePrincipal, principal_id)
    if principal is None or principal.disabled:
        raise SignedOut("the service principal is disabled or gone")
    return Caller.build(kind="token", name=principal.name, roles=frozenset(principal.roles),
                        principal_id=principal.id)


def get_page_caller(request: Request, session: PageSession) -> Caller:
    """The signed-in caller of a page; SignedOut (a redirect to the sign-in) otherwise."""
    subject = signed_in(request)
    if subject is None:
        raise SignedOut("sign in to continue")
    if subject.kind == "principal":
        if not getattr(request.app.state, "ui_demo_sign_in", False):
            raise SignedOut("sign in to continue")
        caller = principal_caller(session, subject.id)
    else:
        caller = person_caller(session, subject.id)
    request.state.caller = caller
    return caller


def get_optional_caller(request: Request, session: PageSession) -> Caller | None:
    """The signed-in caller, or None (the sign-in page itself)."""
    try:
        return get_page_caller(request, session)
    except errors.DomainError:
        return None


PageCaller = Annotated[Caller, Depends(get_page_caller)]
OptionalCaller = Annotated[Caller | None, Depends(get_optional_caller)]


def page_require(*capabilities: str) -> Callable[[Caller], Caller]:
    """Like ``idgov.web.deps.require``: the caller must hold one of ``capabilities``."""

    def check(caller: PageCaller) -> Caller:
        if not any(caller.can(c) for c in capabilities):
            raise errors.Forbidden(f"this needs one of: {', '.join(capabilities)}")
        return caller

    check.__name__ = "page_require_" + "_or_".join(c.replace(":", "_") for c in capabilities)
    return check


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's; Forbidden otherwise."""
    form = await request.form()
    if not csrf_valid(request, form.get(CSRF_FIELD)):
        raise errors.Forbidden("the form has expired or did not come from this site; "
                               "reload the page and try again")
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def _wants_redirect(request: Request) -> bool:
    return request.method in ("GET", "HEAD")


class PageRoute(APIRoute):
    """Routes of pages answer HTML: a domain error becomes an error page with its status
    (403, 404, 409...), a signed-out visitor is sent to the sign-in page. The unit of work
    has already rolled back when the error reaches here (nothing changed)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignedOut:
                sign_out(request)
                if _wants_redirect(request):
                    target = request.url.path
                    if request.url.query:
                        target += "?" + request.url.query
                    return RedirectResponse(f"{SIGN_IN_PATH}?next={_quote(target)}",
                                            status_code=303)
                return error_page(request, 401, "sign in to continue")
            except errors.DomainError as exc:
                return error_page(request, status_for(exc), exc.detail)
            except RequestValidationError:
                return error_page(request, 404, "there is no such page")

        return page_handler


def _quote(path: str) -> str:
    return quote(path, safe="/")


def page_router(*, prefix: str = "/ui") -> APIRouter:
    """A router of pages: HTML errors (``PageRoute``), hidden from the OpenAPI document."""
    return APIRouter(prefix=prefix, route_class=PageRoute, include_in_schema=False)


def safe_next(value: object, default: str = "/ui/") -> str:
    """A redirect target after sign-in: a path of the pages, never another site."""
    if isinstance(value, str) and value.startswith("/ui") and "//" not in value \
            and "\\" not in value:
        return value
    return default
