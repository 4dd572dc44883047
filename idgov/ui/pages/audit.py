"""The auditor's audit trail pages (/ui/audit): events searched by actor, object, action
and time, and the chain's verification status.

Same services and capability as ``/audit`` (``audit:read``). Times on the page are UTC.
The verification reads every event, so it runs when asked (a button), not on every view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from starlette.responses import Response

from idgov.audit import service, verify
from idgov.audit.schemas import AuditEventFilter
from idgov.auth.caller import Caller
from idgov.errors import InvalidInput
from idgov.ui import lookup
from idgov.ui.deps import page_require, page_router
from idgov.ui.registry import NavItem, register_nav
from idgov.ui.render import field_errors, render
from idgov.web.deps import ClockDep, Ctx, DbSession

router = page_router(prefix="/ui/audit")
register_nav(NavItem(key="audit", label="Audit trail", href="/ui/audit",
                     capabilities=("audit:read",), order=510))

Reader = Annotated[Caller, Depends(page_require("audit:read"))]
KEYS = ("actor_id", "object_type", "object_id", "action", "from", "to", "cursor")


def _utc(value: str) -> str:
    try:
        return value if datetime.fromisoformat(value).tzinfo else value + "+00:00"
    except ValueError:
        return value


@router.get("")
def events(request: Request, session: DbSession, caller: Reader) -> Response:
    """Sealed events in chain order, filtered; 100 a page."""
    chosen = lookup.query_values(request.query_params, KEYS)
    data: dict[str, str | int] = {k: (_utc(v) if k in ("from", "to") else v)
                                  for k, v in chosen.items()}
    errors: dict[str, str] = {}
    try:
        page = service.list_events(session, filters=lookup.parsed(
            AuditEventFilter, {**data, "limit": 100}))
        found, next_cursor = page.items, page.next_cursor
    except InvalidInput as exc:
        errors, found, next_cursor = field_errors(exc), [], None
    more = None
    if next_cursor:
        more = "/ui/audit?" + urlencode({**chosen, "cursor": next_cursor})
    return render(request, "audit/events.html", status_code=422 if errors else 200,
                  title="Audit trail", events=found, chosen=chosen, errors=errors,
                  next_url=more)


@router.get("/verify")
def verify_chain(request: Request, session: DbSession, caller: Reader, clock: ClockDep,
                 ctx: Ctx) -> Response:
    """Verify the whole chain now with the service's public keys, and show the outcome."""
    result = verify.verify_service_chain(
        session, public_key_paths=[ctx.settings.public_key_path], clock=clock)
    return render(request, "audit/verify.html", title="Audit chain verification",
                  result=result)
