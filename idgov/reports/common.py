"""What the core report definitions share: strict parameter models, look-ups of the names
a filter gives, and the few SQL expressions that differ between SQLite and PostgreSQL.

Every report is one SQL statement where SQL can say it, so that the exporter streams it
(and on PostgreSQL lets the database write the CSV through ``COPY``); the expressions here
keep that statement portable: string aggregation, the seconds between two instants, a row
valid at an instant.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Float, Numeric, Text, and_, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from idgov.clock import Clock
from idgov.errors import FieldError, InvalidInput
from idgov.models.application import Application
from idgov.models.catalog import Entitlement, SodRule
from idgov.models.identity import Identity
from idgov.reports.registry import ReportQuery

Risk = Literal["low", "medium", "high", "critical"]
RISKS: tuple[str, ...] = ("low", "medium", "high", "critical")

P = TypeVar("P", bound=BaseModel)


class ReportParams(BaseModel):
    """Base of every core report's parameters: an unknown filter is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def typed_build(model: type[P], build: Callable[[Session, P, Clock], ReportQuery]
                ) -> Callable[[Session, BaseModel, Clock], ReportQuery]:
    """``build`` as the registry calls it (any parameters model): parameters of another
    model are validated into ``model`` first, so a wrong or missing filter is a 422."""

    def call(session: Session, params: BaseModel, clock: Clock) -> ReportQuery:
        checked = params if isinstance(params, model) else model.model_validate(
            params.model_dump(by_alias=True))
        return build(session, checked, clock)

    call.__doc__ = build.__doc__
    return call


def risks_at_least(minimum: str) -> list[str]:
    """The risk levels ``minimum`` and above, e.g. high -> [high, critical]."""
    return list(RISKS[RISKS.index(minimum):])


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def valid_at(valid_from: Any, valid_until: Any, at: datetime) -> ColumnElement[bool]:
    """A row in force at ``at``: started at or before it, ending (if ever) after it."""
    return and_(valid_from <= at, or_(valid_until.is_(None), valid_until > at))


def string_agg(session: Session, value: Any, order_by: tuple[Any, ...],
               separator: str = "; ") -> Any:
    """Aggregate ``value`` into one text in ``order_by`` order (group_concat on SQLite,
    which keeps the order of the rows it is fed: feed it an ordered subquery)."""
    # Typed as text so that the exporter may let the database write the CSV (idgov.reports.dbcsv).
    if dialect(session) == "postgresql":
        return func.string_agg(value, aggregate_order_by(literal(separator), *order_by),
                               type_=Text())
    return func.group_concat(value, literal(separator), type_=Text())


def seconds_between(session: Session, later: Any, earlier: Any) -> Any:
    """``later - earlier`` in seconds to the millisecond, as a float (NULL when either is
    NULL). SQLite counts in Julian days, whose float is exact to some microseconds only."""
    seconds: Any
    if dialect(session) == "postgresql":
        seconds = cast(func.extract("epoch", later - earlier), Numeric)
    else:
        seconds = (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(func.round(seconds, 3), Float)


def _unknown(field: str, what: str, value: str) -> InvalidInput:
    return InvalidInput(f"there is no {what} {value!r}",
                        errors=[FieldError(field, f"no {what} named {value!r}")])


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def application_id(session: Session, value: str, field: str = "application") -> uuid.UUID:
    """The application named ``value`` (its name, or its id); InvalidInput when none."""
    by_id = _as_uuid(value)
    found = session.scalar(select(Application.id).where(
        Application.id == by_id if by_id is not None else Application.name == value))
    if found is None:
        raise _unknown(field, "application", value)
    return found


def entitlement_ids(session: Session, value: str, field: str = "entitlement") -> list[uuid.UUID]:
    """The entitlements named ``value`` (an id, a name or a native id; a name may be used
    in several applications, so all of them); InvalidInput when none."""
    by_id = _as_uuid(value)
    where = (Entitlement.id == by_id if by_id is not None
             else or_(Entitlement.name == value, Entitlement.native_id == value))
    found = list(session.scalars(select(Entitlement.id).where(where)))
    if not found:
        raise _unknown(field, "entitlement", value)
    return found


def identity_id(session: Session, value: str, field: str, what: str = "identity"
                ) -> uuid.UUID:
    """The identity whose employee id (or id) is ``value``; InvalidInput when none."""
    by_id = _as_uuid(value)
    found = session.scalar(select(Identity.id).where(
        Identity.id == by_id if by_id is not None else Identity.employee_id == value))
    if found is None:
        raise _unknown(field, what, value)
    return found


def sod_rule_id(session: Session, value: str, field: str = "rule") -> uuid.UUID:
    """The SoD rule named ``value`` (its name or id); InvalidInput when none."""
    by_id = _as_uuid(value)
    found = session.scalar(select(SodRule.id).where(
        SodRule.id == by_id if by_id is not None else SodRule.name == value))
    if found is None:
        raise _unknown(field, "SoD rule", value)
    return found
