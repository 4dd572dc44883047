"""Request dependencies: the application context, the unit of work, the caller, capabilities."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth.caller import Caller
from idgov.auth.service import OidcResolver, resolve_caller
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.errors import Forbidden


@dataclass
class AppContext:
    """What the composition root hands to every request."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock
    oidc: OidcResolver | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    """One unit of work per request: commit when the endpoint returns, roll back on error."""
    with unit_of_work(ctx.session_factory) as session:
        yield session


def get_clock(ctx: Ctx) -> Clock:
    return ctx.clock


# scope="function": the unit of work commits when the endpoint returns, before the answer is
# sent (the default runs it after the response: a client could get 201 before the commit).
DbSession = Annotated[Session, Depends(get_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]


def get_caller(
    ctx: Ctx,
    session: DbSession,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    """The authenticated caller, or 401."""
    return resolve_caller(session, authorization, clock=ctx.clock, oidc=ctx.oidc)


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require(*capabilities: str) -> Callable[[Caller], Caller]:
    """A dependency that lets the caller through when they hold any of ``capabilities``."""

    def check(caller: CurrentCaller) -> Caller:
        if not any(caller.can(c) for c in capabilities):
            raise Forbidden(f"this needs one of: {', '.join(capabilities)}")
        return caller

    check.__name__ = "require_" + "_or_".join(c.replace(":", "_") for c in capabilities)
    return check
