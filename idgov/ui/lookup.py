"""Names for the ids the operations pages show (identities, applications, groups), read in
one query per kind, and the small form helpers those pages share."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from idgov.errors import FieldError, InvalidInput
from idgov.models.application import Application
from idgov.models.identity import Group, Identity
from idgov.web.deps import get_session

M = TypeVar("M", bound=BaseModel)


def _names(session: Session, model: Any, column: Any,
           ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {row[0]: row[1] for row in session.execute(
        select(model.id, column).where(model.id.in_(wanted)))}


def identity_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    return _names(session, Identity, Identity.display_name, ids)


def application_names(session: Session,
                      ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    return _names(session, Application, Application.name, ids)


def group_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    return _names(session, Group, Group.name, ids)


def text(form: FormData, key: str) -> str:
    """A posted text field, trimmed ('' when absent)."""
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def query_values(params: Any, keys: Iterable[str]) -> dict[str, str]:
    """The non-empty values of ``keys`` in a query string (a GET form sends empty ones)."""
    return {k: str(params.get(k)).strip() for k in keys if params.get(k) not in (None, "")}


def parsed(model: type[M], data: dict[str, Any]) -> M:
    """``model`` from form or query values; InvalidInput with field errors otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("the values are not valid", errors=[
            FieldError(".".join(str(p) for p in e["loc"]) or "form", e["msg"])
            for e in exc.errors()]) from exc


# The unit of work of a page that changes something. FastAPI runs the exit of a
# request-scoped dependency (idgov.web.deps.DbSession: the commit) only after the response
# has been sent, so a browser following a POST's redirect could read the page before the
# change is committed (and a failed commit would follow a success page). A function-scoped
# session commits before the response leaves.
WorkSession = Annotated[Session, Depends(get_session, scope="function")]
