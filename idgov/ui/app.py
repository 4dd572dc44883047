"""``install_pages(app)``: mount the web pages on the API's FastAPI application.

Adds the signed session cookie (Starlette ``SessionMiddleware``), the static files at
``/ui/static``, every page router of ``idgov.ui.pages`` (each module there has ``router``),
the routers registered with ``idgov.ui.registry.register_page_router`` (certification's)
and those passed in, and ``/`` -> ``/ui/``. Page routes are hidden from the OpenAPI
document (``include_in_schema=False``): they answer HTML, not the API's JSON.

The demo sign-in (sign in as any person of the organisation, with no password) is on when
``demo_sign_in`` says so, or else when the settings allow it (see :func:`demo_sign_in_allowed`).
"""

from __future__ import annotations

import importlib
import pkgutil
from ipaddress import ip_address
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse

from idgov.config import Settings
from idgov.ui import pages as pages_package
from idgov.ui import registry
from idgov.ui.render import STATIC_DIR, reset_templates
from idgov.ui.session import COOKIE_NAME, MAX_AGE_SECONDS, https_only, session_secret


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def demo_sign_in_allowed(settings: Settings) -> bool:
    """Whether anyone may sign in as any person without a password (the embedded demo).

    ``IDGOV_UI_DEMO_SIGN_IN`` (``settings.ui_demo_sign_in``, when the setting exists) decides
    when set. Otherwise only when no OIDC issuer is configured AND the service is reachable
    on the loopback interface only (host and public URL): ``make run`` on a laptop, never a
    published service.
    """
    explicit = settings.ui_demo_sign_in
    if explicit is not None:
        return bool(explicit)
    if settings.oidc_issuer:
        return False
    if not _loopback(settings.host):
        return False
    return settings.public_url is None or _loopback(urlsplit(settings.public_url).hostname)


def page_modules() -> list[str]:
    """Every module of ``idgov.ui.pages``, in name order."""
    return sorted(f"{pages_package.__name__}.{m.name}"
                  for m in pkgutil.iter_modules(pages_package.__path__))


def install_pages(app: FastAPI, *routers: APIRouter, demo_sign_in: bool | None = None) -> None:
    """Mount the web pages on ``app`` (call once, after the API routers, before serving)."""
    settings: Settings = app.state.ctx.settings
    app.state.ui_demo_sign_in = (demo_sign_in_allowed(settings) if demo_sign_in is None
                                 else demo_sign_in)
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings),
                       session_cookie=COOKIE_NAME, max_age=MAX_AGE_SECONDS, same_site="lax",
                       https_only=https_only(settings))
    app.mount("/ui/static", StaticFiles(directory=str(STATIC_DIR)), name="ui-static")
    reset_templates()  # template folders registered since the last build
    for name in page_modules():
        app.include_router(importlib.import_module(name).router)
    for router in (*registry.page_routers(), *routers):
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        """The web pages start at /ui/."""
        return RedirectResponse("/ui/", status_code=307)
