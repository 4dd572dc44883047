"""OIDC authorization-code sign-in for the pages (authlib's Starlette client, with PKCE).

The issuer is ``IDGOV_OIDC_ISSUER`` (discovered from its ``.well-known`` document); the
client is ``settings.oidc_client_id`` / ``settings.oidc_client_secret`` and the scopes
``settings.oidc_scopes`` (default ``openid email profile``), read with ``getattr`` so that
the pages work before those settings exist. The callback is
``<public_url>/ui/auth/callback``.

The access token the issuer returns is validated by the service's own OIDC validator
(``AppContext.oidc``: signature against the JWKS, ``iss``, ``aud`` = ``IDGOV_OIDC_AUDIENCE``,
expiry), and the person is found through the same identity claim as for an API bearer
token, so a person signed in on the pages is exactly the caller the API would see. The
issuer must therefore issue JWT access tokens for this service's audience (Keycloak: an
audience mapper; Entra ID: a scope of this API). The ID token is not parsed here: authlib's
parser is built on the deprecated ``authlib.jose``, and the access token is what counts.
"""

from __future__ import annotations

import uuid
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.errors import Unauthenticated
from idgov.web.deps import AppContext

CALLBACK_PATH = "/ui/auth/callback"
_NEXT = "ui_oidc_next"


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if callable(getter) else value)


def configured(settings: Settings) -> bool:
    """Whether the pages offer "Sign in with your organisation"."""
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _client(app: FastAPI) -> Any:
    """The authlib client of this application, registered on first use."""
    client = getattr(app.state, "ui_oauth_client", None)
    if client is not None:
        return client
    settings: Settings = app.state.ctx.settings
    if not configured(settings):
        raise Unauthenticated("sign-in through an OIDC issuer is not configured")
    issuer = str(settings.oidc_issuer).rstrip("/")
    oauth = OAuth()
    client = oauth.register(
        name="idgov",
        client_id=settings.oidc_client_id,
        client_secret=_secret(settings.oidc_client_secret),
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes
                       or "openid email profile", "code_challenge_method": "S256"},
    )
    app.state.ui_oauth_client = client
    return client


def _callback_url(request: Request, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/") + CALLBACK_PATH
    return str(request.url_for("ui_oidc_callback"))


async def begin(request: Request, *, next_path: str) -> Response:
    """Redirect the browser to the issuer's authorization endpoint."""
    client = _client(request.app)
    request.session[_NEXT] = next_path
    response: Response = await client.authorize_redirect(
        request, _callback_url(request, request.app.state.ctx.settings))
    return response


async def finish(request: Request) -> tuple[uuid.UUID, str]:
    """Exchange the code (state checked against the session) and resolve the person:
    their identity id, and where to go next. Unauthenticated when anything is off."""
    client = _client(request.app)
    ctx: AppContext = request.app.state.ctx
    error = request.query_params.get("error")
    if error:
        raise Unauthenticated(f"the issuer refused the sign-in: {error}")
    state = request.query_params.get("state")
    code = request.query_params.get("code")
    data = await client.framework.get_state_data(request.session, state) if state else None
    if not data or not code:
        raise Unauthenticated("the sign-in expired or did not start here; try again")
    await client.framework.clear_state_data(request.session, state)
    try:
        token = await client.fetch_access_token(redirect_uri=data.get("redirect_uri"),
                                                code=code,
                                                code_verifier=data.get("code_verifier"))
    except OAuthError as exc:
        raise Unauthenticated(f"the issuer refused the code: {exc.error}") from exc
    access_token = token.get("access_token") if isinstance(token, dict) else None
    if not isinstance(access_token, str) or ctx.oidc is None:
        raise Unauthenticated("the issuer returned no access token")
    resolver = ctx.oidc

    def resolve() -> uuid.UUID:
        with unit_of_work(ctx.session_factory) as session:
            caller = resolver(session, access_token)
        if caller.identity_id is None:
            raise Unauthenticated("the token names no person")
        return caller.identity_id

    identity_id = await run_in_threadpool(resolve)
    return identity_id, str(request.session.pop(_NEXT, "/ui/"))
