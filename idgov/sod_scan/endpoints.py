"""GET /sod/violations: the detective SoD scan over every identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from idgov.auth.caller import Caller
from idgov.sod_scan import service
from idgov.sod_scan.schemas import ScanOut, ScanQuery, ScanViolationOut
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(tags=["sod"])

Scanner = Annotated[Caller, Depends(require("sod:scan"))]


@router.get("/sod/violations", response_model=ScanOut, responses=problem_responses(404, 422))
def list_violations(session: DbSession, _caller: Scanner, clock: ClockDep,
                    query: Annotated[ScanQuery, Query()]) -> ScanOut:
    """Every identity whose access breaks an enabled SoD rule at ``as_of`` (default now),
    with both sides' items and every path that gives them; violations covered by an active
    exception are marked ``mitigated`` (left out with ``include_mitigated=false``).
    ``rule_id``/``identity_id`` narrow the scan; naming nothing known answers 404."""
    report = service.run_scan(session, as_of=query.as_of, clock=clock, rule_id=query.rule_id,
                              identity_id=query.identity_id,
                              include_mitigated=query.include_mitigated)
    items = [ScanViolationOut.model_validate(f.as_dict()) for f in report.findings]
    return ScanOut(as_of=report.as_of, policy_version=report.policy_version, count=len(items),
                   items=items)
