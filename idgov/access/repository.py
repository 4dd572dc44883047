"""Access queries: an identity's assignments and SoD exceptions in force at one instant."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from idgov.models.assignment import Assignment
from idgov.models.catalog import SodException
from idgov.policy.expansion import AssignmentRef
from idgov.policy.sod import ExceptionRef


def assignments_at(session: Session, identity_id: uuid.UUID,
                   at: datetime) -> list[AssignmentRef]:
    """The identity's assignments valid at ``at``: started, not ended, not yet revoked then."""
    stmt = select(Assignment.id, Assignment.source, Assignment.role_id,
                  Assignment.entitlement_id).where(
        Assignment.identity_id == identity_id,
        Assignment.valid_from <= at,
        or_(Assignment.valid_until.is_(None), Assignment.valid_until > at),
        or_(Assignment.revoked_at.is_(None), Assignment.revoked_at > at),
    )
    return [AssignmentRef(id=i, source=s, role_id=r, entitlement_id=e)
            for i, s, r, e in session.execute(stmt)]


def exceptions_at(session: Session, identity_id: uuid.UUID,
                  at: datetime) -> list[ExceptionRef]:
    """The identity's SoD exceptions in force at ``at``."""
    stmt = select(SodException.id, SodException.rule_id, SodException.expires_at,
                  SodException.control).where(
        SodException.identity_id == identity_id,
        SodException.created_at <= at,
        SodException.expires_at > at,
        or_(SodException.revoked_at.is_(None), SodException.revoked_at > at),
    )
    return [ExceptionRef(id=i, rule_id=r, expires_at=x, control=c)
            for i, r, x, c in session.execute(stmt)]
