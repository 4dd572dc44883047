"""SCIM errors (RFC 7644 §3.12) and the route class that answers every failure with them.

Everything under /scim/v2 answers errors as ``application/scim+json`` SCIM Error messages,
including authentication (401), authorisation (403), unknown ids (404), uniqueness (409),
version mismatches (412) and invalid input (400). :class:`ScimRoute` wraps each handler,
its dependencies included, and translates domain errors, HTTP exceptions and request
validation errors at that boundary. A caught error rolls the request's session back so that
the unit of work commits nothing of a failed request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from idgov import errors
from idgov.scim.schemas import ERROR

log = logging.getLogger(__name__)

SCIM_JSON = "application/scim+json"
SESSION_KEY = "idgov.scim.session"


class ScimResponse(JSONResponse):
    """A JSON response with the SCIM media type."""

    media_type = SCIM_JSON


class ScimError(Exception):
    """An error answered as a SCIM Error message; ``scim_type`` per RFC 7644 Table 9."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def not_found(detail: str) -> ScimError:
    return ScimError(404, detail)


def error_response(status: int, detail: str, scim_type: str | None = None) -> ScimResponse:
    """The SCIM Error message for ``status``."""
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return ScimResponse(body, status_code=status, headers=headers)


def _from_domain(exc: errors.DomainError) -> ScimResponse:
    if isinstance(exc, errors.Unauthenticated):
        return error_response(401, exc.detail)
    if isinstance(exc, errors.Forbidden):
        return error_response(403, exc.detail)
    if isinstance(exc, errors.NotFound):
        return error_response(404, exc.detail)
    if isinstance(exc, errors.Conflict):
        return error_response(409, exc.detail, "uniqueness")
    if isinstance(exc, errors.InvalidInput):
        parts = [f"{e.field}: {e.message}" for e in exc.errors]
        detail = exc.detail + (" (" + "; ".join(parts) + ")" if parts else "")
        return error_response(400, detail, "invalidValue")
    return error_response(400, exc.detail)


def _validation_detail(exc: RequestValidationError) -> str:
    items = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        items.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(items) or "the request is malformed"


def to_response(exc: Exception) -> ScimResponse | None:
    """The SCIM answer to ``exc``, or None for an unexpected error."""
    if isinstance(exc, ScimError):
        return error_response(exc.status, exc.detail, exc.scim_type)
    if isinstance(exc, errors.DomainError):
        return _from_domain(exc)
    if isinstance(exc, RequestValidationError):
        return error_response(400, _validation_detail(exc), "invalidSyntax")
    if isinstance(exc, StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail))
    return None


def _rollback(request: Request) -> None:
    session = request.scope.get(SESSION_KEY)
    if session is not None:
        session.rollback()


class ScimRoute(APIRoute):
    """A route whose failures, dependencies' included, are SCIM Error messages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                answer = to_response(exc)
                _rollback(request)
                if answer is None:
                    log.exception("unhandled error in a SCIM request", exc_info=exc)
                    return error_response(500, "the service failed; the error was logged")
                return answer

        return scim_handler


def remember_session(request: Request, session: Any) -> None:
    """Let :class:`ScimRoute` roll back ``session`` when the request fails."""
    request.scope[SESSION_KEY] = session
