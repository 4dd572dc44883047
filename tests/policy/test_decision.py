"""The policy decision for one request line: risk, SoD it would create, blocking, approvals."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from idgov.policy.decision import (
    REQUESTED_ID,
    ApprovalPolicy,
    Decision,
    Mitigation,
    StageSpec,
    decide,
    risk_at_most,
)
from idgov.policy.expansion import AssignmentRef
from idgov.policy.snapshot import (
    EntitlementNode,
    InclusionEdge,
    ItemRef,
    PolicySnapshot,
    RoleEntitlementEdge,
    RoleNode,
    make_snapshot,
)
from idgov.policy.sod import ExceptionRef
from tests.policy.fixtures import APP, AS_OF, rule, uid

H1, H2, LINE = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=77)
GROUP, DUAL, OWNER = uid("group:finance"), uid("group:dual"), uid("person:controller")
LATER = datetime(2026, 6, 30, tzinfo=UTC)

PAY_VS_VENDOR = rule("Pay vs vendor", (("entitlement", "payments-release"),),
                     (("entitlement", "vendor-master-write"),))
CLERK_VS_VENDOR_ROLE = rule("Clerk vs vendor admin", (("role", "AP Processor"),),
                            (("role", "Vendor Admin"),), severity="critical",
                            exception_allowed=False)

# name -> (risk, privileged, data classification)
ENTITLEMENTS = {
    "ap-invoices-write": ("medium", False, "none"),
    "gl-read": ("low", False, "none"),
    "vendor-master-write": ("high", False, "pii"),
    "payments-release": ("high", False, "regulated"),
    "root-console": ("critical", True, "none"),
    "hr-read": ("low", False, "pii"),
}


def snapshot() -> PolicySnapshot:
    """Finance Clerk includes AP Processor (ap-invoices-write, payments-release) and
    Ledger Reader (gl-read); Vendor Admin grants vendor-master-write; Ops grants root-console."""
    roles = ("Finance Clerk", "AP Processor", "Ledger Reader", "Vendor Admin", "Ops", "Empty")
    grants = (("AP Processor", "ap-invoices-write"), ("AP Processor", "payments-release"),
              ("Ledger Reader", "gl-read"), ("Vendor Admin", "vendor-master-write"),
              ("Ops", "root-console"))
    return make_snapshot(
        as_of=AS_OF,
        roles=[RoleNode(uid(n), n) for n in roles],
        entitlements=[EntitlementNode(uid(n), n, APP, f"cn={n}", risk=r, privileged=p,
                                      data_classification=c)
                      for n, (r, p, c) in ENTITLEMENTS.items()],
        inclusions=[InclusionEdge(uid("Finance Clerk"), uid(c), uid(f"incl:{c}"))
                    for c in ("AP Processor", "Ledger Reader")],
        role_entitlements=[RoleEntitlementEdge(uid(r), uid(e), uid(f"{r}>{e}"))
                           for r, e in grants],
        sod_rules=[PAY_VS_VENDOR, CLERK_VS_VENDOR_ROLE],
    )


def role(name: str) -> ItemRef:
    return ItemRef("role", uid(name))


def ent(name: str) -> ItemRef:
    return ItemRef("entitlement", uid(name))


def held_role(name: str, aid: uuid.UUID = H1, source: str = "request") -> AssignmentRef:
    return AssignmentRef(aid, source, role_id=uid(name))


def held_ent(name: str, aid: uuid.UUID = H2, source: str = "admin") -> AssignmentRef:
    return AssignmentRef(aid, source, entitlement_id=uid(name))


def names(ids: tuple[uuid.UUID, ...]) -> list[str]:
    by_id = {uid(n): n for n in ENTITLEMENTS}
    return [by_id[i] for i in ids]


def kinds(decision: Decision) -> list[tuple[int, str, int]]:
    return [(a.stage, a.kind, a.required) for a in decision.approvals]


AUTO_LOW = ApprovalPolicy(auto_approve_max_risk="low")


@pytest.mark.parametrize(("item", "risk", "privileged", "classes", "entitlements"), [
    (role("Finance Clerk"), "high", False, {"regulated"},
     ["ap-invoices-write", "gl-read", "payments-release"]),
    (role("Ledger Reader"), "low", False, set(), ["gl-read"]),
    (role("Ops"), "critical", True, set(), ["root-console"]),
    (role("Empty"), "low", False, set(), []),
    (ent("hr-read"), "low", False, {"pii"}, ["hr-read"]),
    (ent("vendor-master-write"), "high", False, {"pii"}, ["vendor-master-write"]),
])
def test_risk_privilege_and_classification_come_from_what_the_item_reaches(
        item: ItemRef, risk: str, privileged: bool, classes: set[str],
        entitlements: list[str]) -> None:
    decision = decide(snapshot(), item=item, held=[])
    assert (decision.risk, decision.privileged, set(decision.data_classifications)) == (
        risk, privileged, classes)
    assert names(decision.entitlements) == entitlements
    assert decision.allowed


def test_new_entitlements_leave_out_what_is_already_held_or_pending() -> None:
    decision = decide(snapshot(), item=role("Finance Clerk"),
                      held=[held_role("Ledger Reader")],
                      pending=[AssignmentRef(H2, "pending",
                                             entitlement_id=uid("payments-release"))])
    assert names(decision.new_entitlements) == ["ap-invoices-write"]


@pytest.mark.parametrize(("policy", "item", "expected_auto", "expected"), [
    (AUTO_LOW, role("Ledger Reader"), True, []),
    (ApprovalPolicy(), role("Ledger Reader"), False, [(1, "manager", 1), (2, "owner", 1)]),
    (AUTO_LOW, ent("ap-invoices-write"), False, [(1, "manager", 1), (2, "owner", 1)]),
    (ApprovalPolicy(auto_approve_max_risk="critical"), role("Ops"), False,
     [(1, "manager", 1), (2, "owner", 1), (3, "dual_control", 2)]),
    (ApprovalPolicy(stages=(StageSpec("group", GROUP, "all"),), dual_control_group_id=DUAL),
     ent("root-console"), False, [(1, "group", 1), (2, "dual_control", 2)]),
    (ApprovalPolicy(stages=()), ent("payments-release"), False, []),
])
def test_approvals_follow_the_policy_risk_and_privilege(
        policy: ApprovalPolicy, item: ItemRef, expected_auto: bool,
        expected: list[tuple[int, str, int]]) -> None:
    decision = decide(snapshot(), item=item, held=[], policy=policy)
    assert decision.auto_approved is expected_auto
    assert kinds(decision) == expected


def test_group_and_dual_control_needs_carry_their_groups() -> None:
    policy = ApprovalPolicy(stages=(StageSpec("group", GROUP, "all"),), dual_control_group_id=DUAL)
    group, dual = decide(snapshot(), item=ent("root-console"), held=[], policy=policy).approvals
    assert (group.group_id, group.mode) == (GROUP, "all")
    assert (dual.group_id, dual.required) == (DUAL, 2)


def test_a_new_conflict_blocks_and_is_explained_on_both_sides() -> None:
    decision = decide(snapshot(), item=role("Finance Clerk"),
                      held=[held_ent("vendor-master-write")], requested_id=LINE)
    assert not decision.allowed and not decision.auto_approved
    (violation,) = decision.violations
    assert decision.blocking == (violation,)
    assert decision.approvals == ()
    assert violation.explanation() == (
        "rule 'Pay vs vendor' (high): holds payments-release "
        "(via Finance Clerk -> AP Processor -> payments-release) and also vendor-master-write "
        "(directly)")
    (side_a,) = violation.side_a
    assert [(g.assignment_id, g.source) for g in side_a.grants] == [(LINE, "requested")]


def test_a_conflict_with_a_pending_line_counts() -> None:
    pending = AssignmentRef(H2, "pending", role_id=uid("Vendor Admin"))
    decision = decide(snapshot(), item=ent("payments-release"), held=[], pending=[pending])
    (violation,) = decision.blocking
    assert violation.rule.name == "Pay vs vendor"
    assert [(g.assignment_id, g.source) for g in violation.side_b[0].grants] == [(H2, "pending")]
    assert violation.side_a[0].grants[0].assignment_id == REQUESTED_ID


def test_a_conflict_already_there_is_not_this_lines_doing() -> None:
    held = [held_ent("vendor-master-write"), held_ent("payments-release", aid=uuid.UUID(int=3))]
    decision = decide(snapshot(), item=role("Finance Clerk"), held=held, policy=AUTO_LOW)
    assert decision.violations == ()
    assert decision.allowed


def test_an_active_exception_keeps_the_violation_but_does_not_block() -> None:
    exception = ExceptionRef(uuid.UUID(int=9), PAY_VS_VENDOR.id, LATER, "monthly review")
    decision = decide(snapshot(), item=ent("payments-release"),
                      held=[held_ent("vendor-master-write")], exceptions=[exception],
                      policy=ApprovalPolicy(auto_approve_max_risk="critical"))
    (violation,) = decision.violations
    assert violation.mitigated and decision.allowed and decision.blocking == ()
    assert not decision.auto_approved  # any violation at all means people look at it
    assert kinds(decision) == [(1, "manager", 1), (2, "owner", 1)]


def test_a_mitigation_turns_an_exception_allowing_conflict_into_a_control_owner_stage() -> None:
    mitigation = Mitigation("weekly payment review", OWNER, LATER)
    decision = decide(snapshot(), item=ent("payments-release"),
                      held=[held_ent("vendor-master-write")], mitigation=mitigation)
    assert decision.allowed and decision.blocking == ()
    assert decision.exceptions_needed == (PAY_VS_VENDOR.id,)
    assert kinds(decision) == [(1, "manager", 1), (2, "owner", 1), (3, "control_owner", 1)]
    assert decision.approvals[2].owner_id == OWNER
    assert decision.mitigation == mitigation


def test_a_mitigation_cannot_lift_a_rule_without_exceptions() -> None:
    mitigation = Mitigation("weekly review", OWNER, LATER)
    decision = decide(snapshot(), item=role("Finance Clerk"), held=[held_role("Vendor Admin")],
                      mitigation=mitigation)
    assert [v.rule.name for v in decision.violations] == ["Clerk vs vendor admin",
                                                          "Pay vs vendor"]
    assert [v.rule.name for v in decision.blocking] == ["Clerk vs vendor admin"]
    assert decision.exceptions_needed == (PAY_VS_VENDOR.id,)
    assert not decision.allowed
    assert "(the rule allows no exception)" in " ".join(decision.reasons)


def test_revoke_is_allowed_without_sod_or_approvals() -> None:
    decision = decide(snapshot(), item=role("Finance Clerk"), action="revoke",
                      held=[held_role("Finance Clerk"), held_role("Vendor Admin", aid=H2)])
    assert (decision.allowed, decision.auto_approved, decision.violations,
            decision.approvals) == (True, True, (), ())


def test_an_unknown_item_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the policy snapshot"):
        decide(snapshot(), item=role("Nobody"), held=[])


def test_as_dict_is_json_ready_with_paths_and_flags() -> None:
    mitigation = Mitigation("weekly payment review", OWNER, LATER)
    decision = decide(snapshot(), item=role("Finance Clerk"), held=[held_role("Vendor Admin")],
                      mitigation=mitigation, requested_id=LINE)
    data = json.loads(json.dumps(decision.as_dict()))
    assert data["item"] == {"type": "role", "id": str(uid("Finance Clerk")),
                            "name": "Finance Clerk"}
    assert (data["allowed"], data["risk"], data["data_classifications"]) == (
        False, "high", ["regulated"])
    assert data["blocking"] == [str(CLERK_VS_VENDOR_ROLE.id)]
    assert data["exceptions_needed"] == [str(PAY_VS_VENDOR.id)]
    assert data["mitigation"] == {"control": "weekly payment review", "owner_id": str(OWNER),
                                  "expires_at": "2026-06-30T00:00:00+00:00"}
    clerk, pay = data["violations"]
    assert (clerk["rule"]["name"], clerk["blocking"], clerk["mitigated"]) == (
        "Clerk vs vendor admin", True, False)
    assert (pay["blocking"], pay["exception_needed"]) == (False, True)
    assert pay["side_a"] == [{
        "type": "entitlement", "id": str(uid("payments-release")), "name": "payments-release",
        "grants": [{"assignment_id": str(LINE), "source": "requested", "path": [
            {"type": "role", "id": str(uid("Finance Clerk")), "name": "Finance Clerk"},
            {"type": "role", "id": str(uid("AP Processor")), "name": "AP Processor"},
            {"type": "entitlement", "id": str(uid("payments-release")),
             "name": "payments-release"}]}]}]
    assert pay["explanation"].startswith("rule 'Pay vs vendor' (high): holds payments-release")
    assert data["policy_version"] == decision.policy_version != ""


@pytest.mark.parametrize(("risk", "ceiling", "expected"), [
    ("low", "low", True), ("medium", "low", False), ("high", "critical", True),
    ("low", None, False),
])
def test_risk_at_most(risk: str, ceiling: str | None, expected: bool) -> None:
    assert risk_at_most(risk, ceiling) is expected
