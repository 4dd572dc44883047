"""RFC 9457 problem+json for every error, mapped along the exception class hierarchy."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from idgov import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://idgov.dev/problems/"

# Domain error class -> HTTP status. The most specific class in an error's MRO wins.
STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InUse: 409,
    errors.InvalidInput: 422,
    errors.CycleError: 422,
    errors.DomainError: 400,
}


def status_for(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def problem(status: int, title: str, detail: str, *, type_: str | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (type_ or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts)


async def _domain(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.InvalidInput):
        extra["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    for key, value in exc.extra.items():
        extra.setdefault(key, value)
    return problem(status_for(exc), exc.title, exc.detail, **extra)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        {"field": _field_path(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    return problem(422, "Invalid input", "the request does not match the schema",
                   type_="invalid-input", errors=items)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 401: "Authentication required",
              403: "Forbidden"}
    title = titles.get(exc.status_code, "HTTP error")
    return problem(exc.status_code, title, str(exc.detail))


async def _integrity(_request: Request, exc: Exception) -> JSONResponse:
    log.info("integrity error mapped to 409: %s", type(exc).__name__)
    return problem(409, "Conflict", "the change conflicts with existing data (a duplicate or a "
                   "reference still in use)", type_="conflict")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "the service failed; the error was logged")


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(errors.DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(Exception, _unexpected)


# Documented on every route that may answer them (OpenAPI "responses").
class Problem(dict[str, Any]):
    """Marker type for the problem+json schema in OpenAPI."""
