"""SoD evaluation: which rules are broken, by which held items, through which paths."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from idgov.policy.expansion import AssignmentRef, effective_access
from idgov.policy.snapshot import PolicySnapshot, SodRuleSpec
from idgov.policy.sod import ExceptionRef, HeldItem, Violation, evaluate_sod
from tests.policy.fixtures import catalog, rule, uid

A1, A2 = uuid.UUID(int=1), uuid.UUID(int=2)
LATER = datetime(2026, 6, 30, tzinfo=UTC)

PAY_VS_VENDOR = rule("Pay vs vendor", (("entitlement", "payments-release"),),
                     (("entitlement", "vendor-master-write"),))
AP_VS_VENDOR_ROLE = rule("AP vs vendor admin", (("role", "AP Processor"),),
                         (("role", "Vendor Admin"),), severity="critical")
DISABLED = rule("Retired", (("entitlement", "gl-read"),), (("role", "Finance Clerk"),),
                enabled=False)
NO_EXCEPTIONS = rule("Strict", (("entitlement", "payments-release"),),
                     (("entitlement", "vendor-master-write"),), exception_allowed=False)

INCLUSIONS = (("Finance Clerk", "AP Processor"),)
GRANTS = (("AP Processor", "payments-release"), ("Vendor Admin", "vendor-master-write"))


def snapshot_with(*rules: SodRuleSpec) -> PolicySnapshot:
    return catalog(rules=rules, inclusions=INCLUSIONS, grants=GRANTS)


def summarise(violations: tuple[Violation, ...]) -> list[tuple[str, list[str], list[str], bool]]:
    def side(items: tuple[HeldItem, ...]) -> list[str]:
        return [f"{h.name}: " + " | ".join(" -> ".join(s.name for s in g.path) for g in h.grants)
                for h in items]
    return [(v.rule.name, side(v.side_a), side(v.side_b), v.mitigated) for v in violations]


@pytest.mark.parametrize(
    ("rules", "assignments", "expected"),
    [
        pytest.param((PAY_VS_VENDOR,), [AssignmentRef(A1, "admin", role_id=uid("Finance Clerk"))],
                     [], id="one-side-only-is-fine"),
        pytest.param(
            (PAY_VS_VENDOR,),
            [AssignmentRef(A1, "request", role_id=uid("Finance Clerk")),
             AssignmentRef(A2, "admin", entitlement_id=uid("vendor-master-write"))],
            [("Pay vs vendor",
              ["payments-release: Finance Clerk -> AP Processor -> payments-release"],
              ["vendor-master-write: vendor-master-write"], False)],
            id="entitlements-through-role-and-direct"),
        pytest.param(
            (AP_VS_VENDOR_ROLE,),
            [AssignmentRef(A1, "request", role_id=uid("Finance Clerk")),
             AssignmentRef(A2, "request", role_id=uid("Vendor Admin"))],
            [("AP vs vendor admin", ["AP Processor: Finance Clerk -> AP Processor"],
              ["Vendor Admin: Vendor Admin"], False)],
            id="rule-on-included-technical-role-fires"),
        pytest.param(
            (DISABLED,),
            [AssignmentRef(A1, "request", role_id=uid("Finance Clerk")),
             AssignmentRef(A2, "admin", entitlement_id=uid("gl-read"))],
            [], id="disabled-rule-is-skipped"),
        pytest.param(
            (PAY_VS_VENDOR, AP_VS_VENDOR_ROLE),
            [AssignmentRef(A1, "request", role_id=uid("Finance Clerk")),
             AssignmentRef(A2, "request", role_id=uid("Vendor Admin"))],
            [("AP vs vendor admin", ["AP Processor: Finance Clerk -> AP Processor"],
              ["Vendor Admin: Vendor Admin"], False),
             ("Pay vs vendor",
              ["payments-release: Finance Clerk -> AP Processor -> payments-release"],
              ["vendor-master-write: Vendor Admin -> vendor-master-write"], False)],
            id="two-rules-sorted-by-name"),
    ],
)
def test_evaluate_sod_reports_broken_rules_with_paths(
        rules: tuple[SodRuleSpec, ...], assignments: list[AssignmentRef],
        expected: list[tuple[str, list[str], list[str], bool]]) -> None:
    snapshot = snapshot_with(*rules)
    got = evaluate_sod(snapshot, effective_access(snapshot, assignments))
    assert summarise(got) == expected


HOLDS_BOTH = [AssignmentRef(A1, "request", role_id=uid("Finance Clerk")),
              AssignmentRef(A2, "request", role_id=uid("Vendor Admin"))]


def test_an_active_exception_marks_the_violation_mitigated_but_keeps_it_visible() -> None:
    snapshot = snapshot_with(PAY_VS_VENDOR)
    exception = ExceptionRef(uuid.UUID(int=9), PAY_VS_VENDOR.id, LATER, "monthly review")
    (violation,) = evaluate_sod(snapshot, effective_access(snapshot, HOLDS_BOTH), [exception])
    assert violation.mitigated
    assert violation.exception == exception


def test_an_exception_does_not_count_for_a_rule_that_allows_none() -> None:
    snapshot = snapshot_with(NO_EXCEPTIONS)
    exception = ExceptionRef(uuid.UUID(int=9), NO_EXCEPTIONS.id, LATER)
    (violation,) = evaluate_sod(snapshot, effective_access(snapshot, HOLDS_BOTH),
                                {NO_EXCEPTIONS.id: exception})
    assert not violation.mitigated


def test_explanation_names_rule_items_and_paths() -> None:
    snapshot = snapshot_with(PAY_VS_VENDOR)
    assignments = [*HOLDS_BOTH,
                   AssignmentRef(uuid.UUID(int=3), "admin",
                                 entitlement_id=uid("vendor-master-write"))]
    (violation,) = evaluate_sod(snapshot, effective_access(snapshot, assignments))
    assert violation.explanation() == (
        "rule 'Pay vs vendor' (high): holds payments-release "
        "(via Finance Clerk -> AP Processor -> payments-release) and also vendor-master-write "
        "(directly, via Vendor Admin -> vendor-master-write)"
    )
