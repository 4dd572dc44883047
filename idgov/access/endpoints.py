"""/identities/{identity_id}/access: what a person holds, why, and their SoD conflicts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.access import service
from idgov.access.schemas import AccessQuery, AccessRead
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(tags=["access"])

Reader = Annotated[Caller, Depends(require("identities:read", "identities:read_related"))]


@router.get("/identities/{identity_id}/access", response_model=AccessRead,
            responses=problem_responses(404))
def get_access(session: DbSession, caller: Reader, clock: ClockDep, identity_id: uuid.UUID,
               query: Annotated[AccessQuery, Query()]) -> AccessRead:
    """Effective access: each entitlement with every grant (assignment and path through
    roles), the roles held (directly or by inclusion) and the SoD violations. ``as_of`` gives
    the access of a past instant, from the assignments and links valid then. A person sees
    themselves and their reports; anyone else answers 404."""
    return service.get_access(session, caller=caller, identity_id=identity_id,
                              as_of=query.as_of, clock=clock)
