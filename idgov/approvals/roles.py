"""The derived service role "approver": the person has a waiting approval step to decide.

``install`` registers the source with :func:`idgov.auth.roles.register_role_source`; the
composition roots (``idgov.main``, ``idgov.cli``) call it with their clock, which decides
whether a delegation is in force.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from idgov.approvals import repository
from idgov.auth.roles import register_role_source
from idgov.clock import Clock, SystemClock
from idgov.models.requests import AccessRequest, ApprovalStep, RequestLine


def is_approver(session: Session, identity_id: uuid.UUID, *, clock: Clock | None = None) -> bool:
    """True while the person has a waiting step they may decide: as a named approver, or as
    the current delegate of one (within the delegation's risk ceiling)."""
    at = (clock or SystemClock()).now()
    found = (exists().where(ApprovalStep.state == "waiting",
                            RequestLine.id == ApprovalStep.line_id,
                            AccessRequest.id == RequestLine.request_id,
                            repository.may_decide(identity_id, at)))
    return bool(session.scalar(select(found)))


def install(clock: Clock | None = None) -> None:
    """Derive the "approver" role from the data (``clock`` tells when delegations count)."""
    source_clock: Clock = clock or SystemClock()

    def source(session: Session, identity_id: uuid.UUID) -> bool:
        return is_approver(session, identity_id, clock=source_clock)

    register_role_source("approver", source)
