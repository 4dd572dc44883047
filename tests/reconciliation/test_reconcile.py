"""Reconciliation: every kind of drift, and remediation that queues each fix once."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, event

from idgov.db.session import unit_of_work
from idgov.models.provisioning import DriftItem, ProvisioningOperation
from idgov.provisioning import service as provisioning
from tests.reconciliation.helpers import ACTOR, Lab


def _drifting(lab: Lab) -> None:
    """One person per kind of drift (see the expected table in the first test)."""
    g1, g2 = lab.entitlement("g1"), lab.entitlement("g2")
    t = lab.target
    t.add_entitlement("g1")
    t.add_entitlement("g2")
    t.add_entitlement("g-unmanaged")
    for employee_id, state in (("E1", "active"), ("E2", "active"), ("E3", "active"),
                               ("E4", "active"), ("E5", "terminated"), ("E6", "suspended"),
                               ("E7", "active")):
        lab.person(employee_id, state=state)
    lab.assign("E1", g1)
    lab.assign("E1", g2)
    lab.assign("E3", g1)
    lab.assign("E4", g1)
    lab.assign("E6", g2)
    lab.assign("E7", g1)

    def account(name: str, employee_id: str | None, *memberships: str,
                enabled: bool = True) -> None:
        attributes = {"employeeNumber": employee_id} if employee_id else {}
        ref = t.add_account(name, attributes, enabled=enabled)
        for entitlement in memberships:
            t.add_member(entitlement, ref.native_id)

    account("a", "E1", "g1", "g-unmanaged")   # lacks g2
    account("b", "E2", "g1")                  # nobody assigned g1 to E2
    # E3 has no account at all
    account("d", "E4", "g1", enabled=False)   # active, should have access, disabled
    account("t", "E5")                        # terminated, still enabled
    account("s", "E6", "g2")                  # suspended, still enabled
    account("g", "E7", "g1")                  # exactly as desired
    account("zz", None, "g2")                 # nobody's


def _summary(lab: Lab, items: list[DriftItem]) -> set[tuple[str, str | None, str | None,
                                                          str | None]]:
    return {(d.kind, lab.who(d.identity_id), d.detail.get("username") or
             _username(lab, d.account_native_id), d.entitlement_native_id) for d in items}


def _username(lab: Lab, native_id: str | None) -> str | None:
    if native_id is None:
        return None
    return lab.target.accounts[native_id].username


EXPECTED_DRIFT = {
    ("orphan_account", None, "zz", None),
    ("unassigned_membership", "E2", "b", "g1"),
    ("missing_grant", "E1", "a", "g2"),
    ("missing_account", "E3", None, None),
    ("missing_grant", "E3", None, "g1"),
    ("disabled_account_of_active_identity", "E4", "d", None),
    ("enabled_account_of_inactive_identity", "E5", "t", None),
    ("enabled_account_of_inactive_identity", "E6", "s", None),
}


def test_reconciliation_finds_every_kind_of_drift(lab: Lab) -> None:
    _drifting(lab)

    run = lab.reconcile()

    assert run.state == "succeeded"
    items = lab.drift(run.id)
    assert _summary(lab, items) == EXPECTED_DRIFT
    assert {k: run.counts[k] for k in (
        "orphan_account", "unassigned_membership", "missing_grant", "missing_account",
        "disabled_account_of_active_identity", "enabled_account_of_inactive_identity",
        "unknown_entitlements", "operations_queued")} == {
        "orphan_account": 1, "unassigned_membership": 1, "missing_grant": 2,
        "missing_account": 1, "disabled_account_of_active_identity": 1,
        "enabled_account_of_inactive_identity": 2, "unknown_entitlements": 1,
        "operations_queued": 0}
    # Without remediation nothing is queued and nothing is sent.
    assert lab.operations() == []
    assert [c.method for c in lab.target.calls] == ["list_accounts", "list_entitlements"]


def _ops(lab: Lab) -> list[tuple[str | None, str, str | None, str, str]]:
    return sorted((lab.who(o.identity_id), o.action, lab.native(o.entitlement_id), o.state,
                   o.cause) for o in lab.operations())


def test_remediation_queues_the_fixes_once(lab: Lab) -> None:
    _drifting(lab)

    first = lab.reconcile(remediate=True)

    expected = [
        ("E1", "grant", "g2", "pending", "reconciliation"),
        ("E3", "create_account", None, "pending", "reconciliation"),
        ("E3", "grant", "g1", "pending", "reconciliation"),
        ("E4", "enable_account", None, "pending", "reconciliation"),
        ("E5", "disable_account", None, "pending", "reconciliation"),
        ("E6", "disable_account", None, "pending", "reconciliation"),
    ]
    assert _ops(lab) == expected  # no revoke: the application keeps unassigned access
    assert (first.counts["operations_queued"], first.counts["operations_already_open"]) == (6, 0)
    ops = {o.id: o for o in lab.operations()}
    # The account is created before its membership.
    e3 = [o for o in ops.values() if o.identity_id == lab.people["E3"]]
    assert [o.action for o in sorted(e3, key=lambda o: o.ordinal)] == ["create_account",
                                                                       "grant"]
    assert e3[0].detail.get("username") or e3[1].detail.get("username")
    fixed = {(d.kind, lab.who(d.identity_id)): d.remediation_operation_id
             for d in lab.drift(first.id)}
    assert fixed[("unassigned_membership", "E2")] is None
    assert fixed[("orphan_account", None)] is None
    assert {k: ops[v].action for k, v in fixed.items() if v is not None} == {
        ("missing_grant", "E1"): "grant", ("missing_grant", "E3"): "grant",
        ("missing_account", "E3"): "create_account",
        ("disabled_account_of_active_identity", "E4"): "enable_account",
        ("enabled_account_of_inactive_identity", "E5"): "disable_account",
        ("enabled_account_of_inactive_identity", "E6"): "disable_account",
    }

    second = lab.reconcile(remediate=True)

    assert _ops(lab) == expected
    assert (second.counts["operations_queued"],
            second.counts["operations_already_open"]) == (0, 6)
    again = {(d.kind, lab.who(d.identity_id)): d.remediation_operation_id
             for d in lab.drift(second.id)}
    assert again == fixed  # pointing at the operations the first run queued


def test_unassigned_access_is_revoked_only_when_the_application_says_so(lab: Lab) -> None:
    _drifting(lab)
    lab.reconcile(remediate=True)
    lab.settings(remove_unassigned_access=True)

    run = lab.reconcile(remediate=True)

    assert run.counts["operations_queued"] == 1
    revokes = [o for o in lab.operations() if o.action == "revoke"]
    assert [(lab.who(o.identity_id), lab.native(o.entitlement_id), o.cause)
            for o in revokes] == [("E2", "g1", "reconciliation")]
    assert revokes[0].account_id is not None


def test_a_fix_is_queued_again_once_the_previous_one_is_over(lab: Lab) -> None:
    _drifting(lab)
    lab.reconcile(remediate=True)
    grant = next(o for o in lab.operations()
                 if o.action == "grant" and o.identity_id == lab.people["E1"])
    with unit_of_work(lab.factory) as session:
        provisioning.complete_operation(session, operation_id=grant.id, succeeded=False,
                                        error="refused", actor=ACTOR, clock=lab.clock)
        session.get(ProvisioningOperation, grant.id).resolved_by = "someone"  # type: ignore[union-attr]

    run = lab.reconcile(remediate=True)

    assert run.counts["operations_queued"] == 1
    grants = [o for o in lab.operations()
              if o.action == "grant" and o.identity_id == lab.people["E1"]]
    assert [o.state for o in grants] == ["failed", "pending"]


def test_an_unresolved_failure_is_not_queued_again(lab: Lab) -> None:
    _drifting(lab)
    lab.reconcile(remediate=True)
    grant = next(o for o in lab.operations()
                 if o.action == "grant" and o.identity_id == lab.people["E1"])
    with unit_of_work(lab.factory) as session:
        provisioning.complete_operation(session, operation_id=grant.id, succeeded=False,
                                        error="refused", actor=ACTOR, clock=lab.clock)

    run = lab.reconcile(remediate=True)

    assert run.counts["operations_queued"] == 0
    item = next(d for d in lab.drift(run.id)
                if d.kind == "missing_grant" and d.identity_id == lab.people["E1"])
    assert item.remediation_operation_id == grant.id


def test_what_aggregation_imported_is_no_drift(lab: Lab) -> None:
    lab.person("E1")
    lab.target.add_entitlement("g1")
    ref = lab.target.add_account("a", {"employeeNumber": "E1"})
    lab.target.add_member("g1", ref.native_id)
    lab.aggregate()

    run = lab.reconcile()

    assert lab.drift(run.id) == []
    assert (run.counts["memberships"], run.counts["correlated"]) == (1, 1)


def _statements(engine: Engine, lab: Lab) -> int:
    count = 0

    def seen(*_args: Any) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", seen)
    try:
        lab.reconcile(remediate=True)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return count


def _population(lab: Lab, groups: list[uuid.UUID], size: int) -> None:
    for n in range(size):
        employee_id = f"P{uuid.uuid4().hex[:8]}"
        lab.person(employee_id)
        lab.assign(employee_id, groups[n % 4])
        ref = lab.target.add_account(f"user-{employee_id}", {"employeeNumber": employee_id})
        lab.target.add_member(f"g{n % 4}", ref.native_id)


def test_the_number_of_queries_does_not_grow_with_the_accounts(engine: Engine,
                                                               lab: Lab) -> None:
    groups = [lab.entitlement(f"g{i}") for i in range(4)]
    for i in range(4):
        lab.target.add_entitlement(f"g{i}")
    orphan = lab.target.add_account("orphan", {})
    lab.target.add_member("g0", orphan.native_id)
    _population(lab, groups, 10)
    lab.reconcile()  # the first run records the accounts
    small = _statements(engine, lab)
    _population(lab, groups, 150)
    lab.reconcile()
    large = _statements(engine, lab)

    assert large == small
