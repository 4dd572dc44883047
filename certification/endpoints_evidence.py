"""/certification/campaigns/{id}/report: a campaign's evidence for auditors (CSV or JSON).

Reading evidence changes nothing and, like every read of the service, is not audited.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from certification import evidence
from idgov.auth.caller import Caller
from idgov.web.deps import Ctx, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(prefix="/certification", tags=["certification"])

Reader = Annotated[Caller, Depends(require("certification:read"))]

_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@router.get("/campaigns/{campaign_id}/report", response_class=StreamingResponse,
            responses={**problem_responses(404),
                       200: {"content": {"text/csv": {"schema": {"type": "string"}},
                                         "application/json": {"schema": {"type": "object"}}},
                             "description": "The campaign report"}})
def campaign_report(session: DbSession, ctx: Ctx, caller: Reader, campaign_id: uuid.UUID,
                    format: Annotated[Literal["csv", "json"], Query()] = "json",
                    ) -> StreamingResponse:
    """The campaign's scope, reviewers and every item with its decision (who, when,
    comment) and remediation status: ``format=json`` (``{campaign, reviewers, items}``) or
    ``format=csv`` (one row per item). Administrators and auditors."""
    del caller
    campaign = evidence.report_campaign(session, campaign_id=campaign_id)
    chunks = (evidence.csv_chunks if format == "csv" else evidence.json_chunks)(
        ctx.session_factory, campaign_id=campaign.id)
    name = f"campaign-{campaign.id}.{format}"
    return StreamingResponse(chunks, media_type=_MEDIA[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
