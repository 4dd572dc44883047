"""Rendering pages: the Jinja2 environment, the common context, error pages.

Every page gets ``caller`` (or None), ``nav`` (the links the caller may use), ``csrf_token``
(for every POST form), ``notices`` (flash messages), ``demo`` (the demo sign-in is on)
and ``errors`` (field -> message, from an ``InvalidInput``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from idgov import errors
from idgov.auth.caller import Caller
from idgov.ui import registry
from idgov.ui.session import csrf_token, pop_flashes, signed_in

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

_TITLES = {401: "Sign-in required", 403: "Not allowed", 404: "Not found", 409: "Conflict",
           422: "Invalid input", 400: "Bad request"}


def _datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.isoformat()
    return "" if value is None else str(value)


def _build() -> Jinja2Templates:
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        *(jinja2.FileSystemLoader(str(p)) for p in registry.template_dirs()),
    ])
    env = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["when"] = _datetime
    env.filters["label"] = lambda s: str(s or "").replace("_", " ")
    return Jinja2Templates(env=env)


_templates: Jinja2Templates | None = None


def templates() -> Jinja2Templates:
    """The environment, built on first use (after every template folder is registered)."""
    global _templates
    if _templates is None:
        _templates = _build()
    return _templates


def reset_templates() -> None:
    """Forget the environment (a template folder was registered late; tests)."""
    global _templates
    _templates = None


def current_caller(request: Request) -> Caller | None:
    caller = getattr(request.state, "caller", None)
    return caller if isinstance(caller, Caller) else None


def field_errors(exc: errors.InvalidInput, *, strip: str = "") -> dict[str, str]:
    """``{field: message}`` of an InvalidInput; ``strip`` removes a prefix such as
    ``form_data.`` so the keys are the form's input names. First message per field wins."""
    found: dict[str, str] = {}
    for item in exc.errors:
        name = item.field.removeprefix(strip) if strip else item.field
        found.setdefault(name, item.message)
    return found


def render(request: Request, name: str, *, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """Render ``name`` with the common context and ``context``."""
    caller = current_caller(request)
    common: dict[str, Any] = {
        "caller": caller,
        "subject": signed_in(request),
        "nav": registry.nav_for(caller) if caller is not None else [],
        "csrf_token": csrf_token(request),
        "notices": pop_flashes(request),
        "demo": bool(getattr(request.app.state, "ui_demo_sign_in", False)),
        "errors": {},
        "path": request.url.path,
    }
    common.update(context)
    return templates().TemplateResponse(request, name, common, status_code=status_code)


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """The page for a refused or failed request: its status, a title and the detail."""
    return render(request, "error.html", status_code=status,
                  title=_TITLES.get(status, "Error"), detail=detail, status=status)
