"""Schemas every module's API shares: problem+json, pages, the OpenAPI error responses."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldErrorOut] | None = None
    model_config = ConfigDict(extra="allow")


class PageOut(BaseModel, Generic[T]):
    """A page of a list: ``{"items": [...], "next_cursor": ...}``."""

    items: list[T]
    next_cursor: str | None


class StrictIn(BaseModel):
    """Base of every input schema: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ListParams(StrictIn):
    """Query parameters of every list: the page size and the cursor from the previous page.

    List filters subclass this; unknown query parameters are refused.
    """

    limit: int | None = Field(default=None, ge=1, le=500, description="Page size (default 50)")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")


class ReadModel(BaseModel):
    """Base of every output schema: built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or expired credentials",
    403: "The caller may not do this",
    404: "No such object",
    409: "Conflicts with the current state",
    422: "Invalid input",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses (401, 403 and 422 always)."""
    wanted = sorted({401, 403, 422, *codes})
    return {
        code: {
            "model": ProblemDetail,
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {"application/problem+json": {}},
        }
        for code in wanted
    }
