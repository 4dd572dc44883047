"""/birthright-rules: administer the rules that give access from HR attributes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.auth.caller import Caller
from idgov.birthright import rules
from idgov.birthright.schemas import (
    BirthrightRuleCreate,
    BirthrightRuleFilter,
    BirthrightRulePage,
    BirthrightRuleRead,
    BirthrightRuleUpdate,
    IdentityBrief,
    RulePreviewIn,
    RulePreviewOut,
)
from idgov.models.identity import Identity
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

Reader = Annotated[Caller, Depends(require("birthright:read"))]
Writer = Annotated[Caller, Depends(require("birthright:write"))]

router = APIRouter(prefix="/birthright-rules", tags=["birthright"])


def _read(outcome: rules.RuleOutcome) -> BirthrightRuleRead:
    out = BirthrightRuleRead.model_validate(outcome.rule)
    out.applied = outcome.applied
    return out


def _briefs(found: list[Identity] | None) -> list[IdentityBrief] | None:
    if found is None:
        return None
    return [IdentityBrief(id=i.id, employee_id=i.employee_id, display_name=i.display_name,
                          department=i.department, lifecycle_state=i.lifecycle_state)
            for i in found]


@router.get("", response_model=BirthrightRulePage, responses=problem_responses())
def list_birthright_rules(session: DbSession, _caller: Reader,
                          filters: Annotated[BirthrightRuleFilter, Query()]
                          ) -> BirthrightRulePage:
    page = rules.list_rules(session, filters=filters)
    return BirthrightRulePage(items=[BirthrightRuleRead.model_validate(r) for r in page.items],
                              next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=BirthrightRuleRead,
             responses=problem_responses(409))
def create_birthright_rule(session: DbSession, caller: Writer, clock: ClockDep,
                           rule_in: BirthrightRuleCreate) -> BirthrightRuleRead:
    """Add a rule. When enabled, everyone it matches now receives its target in the same
    transaction (``applied`` says what happened). 422 for a bad condition (errors at
    ``condition.<path>``) or target, 409 for a taken name."""
    return _read(rules.create_rule(session, rule_in=rule_in, actor=caller.actor, clock=clock))


@router.post("/preview", response_model=RulePreviewOut, responses=problem_responses(404))
def preview_birthright_rule(session: DbSession, _caller: Reader, clock: ClockDep,
                            preview_in: RulePreviewIn) -> RulePreviewOut:
    """Who a condition matches now (count and the first 50). With ``rule_id``: who would gain
    the rule's (or the given) target and who would lose what the rule gives them now.
    Changes nothing; 404 for an unknown rule."""
    found = rules.preview(session, preview_in=preview_in, clock=clock)
    return RulePreviewOut(matching_count=found.matching_count,
                          matching=_briefs(found.matching) or [],
                          gaining_count=found.gaining_count, gaining=_briefs(found.gaining),
                          losing_count=found.losing_count, losing=_briefs(found.losing))


@router.get("/{rule_id}", response_model=BirthrightRuleRead, responses=problem_responses(404))
def get_birthright_rule(session: DbSession, _caller: Reader,
                        rule_id: uuid.UUID) -> BirthrightRuleRead:
    return BirthrightRuleRead.model_validate(rules.get_rule(session, rule_id=rule_id))


@router.patch("/{rule_id}", response_model=BirthrightRuleRead,
              responses=problem_responses(404, 409))
def update_birthright_rule(session: DbSession, caller: Writer, clock: ClockDep,
                           rule_id: uuid.UUID,
                           rule_in: BirthrightRuleUpdate) -> BirthrightRuleRead:
    """Change a rule. A new condition, target or ``enabled`` is applied at once: new
    matches are granted, access the rule no longer gives ends after the grace period."""
    return _read(rules.update_rule(session, rule_id=rule_id, rule_in=rule_in,
                                   actor=caller.actor, clock=clock))


@router.delete("/{rule_id}", status_code=204, responses=problem_responses(404, 409))
def delete_birthright_rule(session: DbSession, caller: Writer, clock: ClockDep,
                           rule_id: uuid.UUID) -> Response:
    """Delete a rule created by mistake; 409 once it gave an assignment (that history is
    kept: disable it with ``enabled=false`` instead)."""
    rules.delete_rule(session, rule_id=rule_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)
