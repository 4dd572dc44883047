"""The SoD violation and exception reports, and the drift and orphan account reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.catalog import sod as sod_admin
from idgov.catalog.schemas import SodExceptionCreate, SodItemIn, SodRuleCreate
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import InvalidInput
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role, RoleEntitlement, RoleInclusion
from idgov.models.provisioning import DriftItem, ProvisioningOperation, ReconciliationRun
from idgov.reports import drift, sod
from idgov.reports.registry import ReportDef
from idgov.types import Actor
from tests.catalog.factories import new_identity

ADMIN = Actor.system("report-tests")
DAY0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def run(factory: sessionmaker[Session], clock: FixedClock, report: ReportDef,
        **params: Any) -> list[tuple[Any, ...]]:
    with unit_of_work(factory) as session:
        query = report.build(session, report.params.model_validate(params), clock)
        assert query.columns == report.columns
        if query.select is not None:
            return [tuple(r) for r in session.execute(query.select).all()]
        assert query.rows is not None
        return [tuple(r) for r in query.rows()]


@pytest.fixture
def sod_world(session_factory: sessionmaker[Session], clock: FixedClock) -> dict[str, Any]:
    """Finance Clerk includes AP Processor, which grants payments-release. "Pay vs vendor"
    (critical): payments-release with vendor-write; "Clerk vs vendor" (medium): the Finance
    Clerk role with vendor-write. E1 and E3 (Sales) hold the clerk role and vendor-write,
    E2 only the role. E3's "Pay vs vendor" is excepted (monthly review) until day 90; E1
    had an exception to "Clerk vs vendor" that expired on day 5, E2 one that was revoked."""
    ids: dict[str, Any] = {}
    clock.set(DAY0)
    with unit_of_work(session_factory) as s:
        ids["M1"] = new_identity(s, "M1", given_name="Maria", family_name="Boss").id
        for key, name, dept in (("E1", "Alice", "Finance"), ("E2", "Bob", "Finance"),
                                ("E3", "Carol", "Sales")):
            ids[key] = new_identity(s, key, given_name=name, family_name="Clerk",
                                    department=dept).id
        app = Application(name="Finance ERP", connector_kind="manual", settings={})
        s.add(app)
        s.flush()
        pay = Entitlement(application_id=app.id, native_id="cn=pay", name="payments-release")
        vendor = Entitlement(application_id=app.id, native_id="cn=vendor", name="vendor-write")
        clerk, ap = Role(name="Finance Clerk"), Role(name="AP Processor", kind="technical")
        s.add_all([pay, vendor, clerk, ap])
        s.flush()
        s.add_all([RoleInclusion(parent_role_id=clerk.id, child_role_id=ap.id, valid_from=DAY0),
                   RoleEntitlement(role_id=ap.id, entitlement_id=pay.id, valid_from=DAY0)])
        for who in ("E1", "E2", "E3"):
            s.add(Assignment(identity_id=ids[who], role_id=clerk.id, source="admin",
                             reason="clerk", valid_from=DAY0))
        for who in ("E1", "E3"):
            s.add(Assignment(identity_id=ids[who], entitlement_id=vendor.id, source="admin",
                             reason="vendors", valid_from=DAY0))
        s.flush()
        ids["pay_rule"] = sod_admin.create_rule(s, rule_in=SodRuleCreate(
            name="Pay vs vendor", severity="critical", side_a=[SodItemIn(entitlement_id=pay.id)],
            side_b=[SodItemIn(entitlement_id=vendor.id)]), actor=ADMIN, clock=clock).id
        ids["clerk_rule"] = sod_admin.create_rule(s, rule_in=SodRuleCreate(
            name="Clerk vs vendor", severity="medium", side_a=[SodItemIn(role_id=clerk.id)],
            side_b=[SodItemIn(entitlement_id=vendor.id)]), actor=ADMIN, clock=clock).id

        def grant(rule: str, who: str, days: int, control: str) -> uuid.UUID:
            return sod_admin.grant_exception(s, rule_id=ids[rule], exception_in=SodExceptionCreate(
                identity_id=ids[who], control=control, approver_id=ids["M1"],
                expires_at=DAY0 + timedelta(days=days)), actor=ADMIN, clock=clock).id

        ids["x_e3"] = grant("pay_rule", "E3", 90, "monthly review")
        ids["x_e1"] = grant("clerk_rule", "E1", 5, "dual sign-off")
        ids["x_e2"] = grant("clerk_rule", "E2", 60, "not needed")
        sod_admin.revoke_exception(s, rule_id=ids["clerk_rule"], exception_id=ids["x_e2"],
                                   reason="no longer a clerk", actor=ADMIN, clock=clock)
    clock.set(DAY0 + timedelta(days=10))
    return ids


PAY_SIDE = "payments-release (role: Finance Clerk > AP Processor)"
CLERK_SIDE = "Finance Clerk (direct)"
VENDOR_SIDE = "vendor-write (direct)"


def test_violations_say_what_is_held_how_and_what_mitigates_it(
        session_factory: sessionmaker[Session], clock: FixedClock,
        sod_world: dict[str, Any]) -> None:
    x_e3 = sod_world["x_e3"]
    assert run(session_factory, clock, sod.VIOLATIONS) == [
        ("E1", "Alice Clerk", "Finance", "Clerk vs vendor", "medium", CLERK_SIDE, VENDOR_SIDE,
         False, None, None, None),
        ("E1", "Alice Clerk", "Finance", "Pay vs vendor", "critical", PAY_SIDE, VENDOR_SIDE,
         False, None, None, None),
        ("E3", "Carol Clerk", "Sales", "Clerk vs vendor", "medium", CLERK_SIDE, VENDOR_SIDE,
         False, None, None, None),
        ("E3", "Carol Clerk", "Sales", "Pay vs vendor", "critical", PAY_SIDE, VENDOR_SIDE,
         True, x_e3, "monthly review", DAY0 + timedelta(days=90)),
    ]
    brief = [(r[0], r[3]) for r in run(session_factory, clock, sod.VIOLATIONS,
                                       include_mitigated=False, min_severity="high")]
    assert brief == [("E1", "Pay vs vendor")]
    assert [(r[0], r[3]) for r in run(session_factory, clock, sod.VIOLATIONS,
                                      rule="Clerk vs vendor", department="Sales")] == [
        ("E3", "Clerk vs vendor")]
    with pytest.raises(InvalidInput):
        run(session_factory, clock, sod.VIOLATIONS, rule="No such rule")


def test_exceptions_with_control_approver_expiry_and_status(
        session_factory: sessionmaker[Session], clock: FixedClock,
        sod_world: dict[str, Any]) -> None:
    d = DAY0
    assert [r[:13] for r in run(session_factory, clock, sod.EXCEPTIONS)] == [
        ("Clerk vs vendor", "medium", "E1", "Alice Clerk", "Finance", "dual sign-off", "M1",
         "Maria Boss", d, d + timedelta(days=5), None, None, "expired"),
        ("Clerk vs vendor", "medium", "E2", "Bob Clerk", "Finance", "not needed", "M1",
         "Maria Boss", d, d + timedelta(days=60), d, "no longer a clerk", "revoked"),
        ("Pay vs vendor", "critical", "E3", "Carol Clerk", "Sales", "monthly review", "M1",
         "Maria Boss", d, d + timedelta(days=90), None, None, "active"),
    ]
    assert [r[2] for r in run(session_factory, clock, sod.EXCEPTIONS, status="active")] == [
        "E3"]
    assert [r[2] for r in run(session_factory, clock, sod.EXCEPTIONS,
                              rule="Clerk vs vendor")] == ["E1", "E2"]


@pytest.fixture
def drift_world(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """ERP: an old run (its drift is history), the latest succeeded reconciliation (an
    orphan with a queued fix, a missing grant of E1), a later failed run and a later
    aggregation, neither of which counts. Wiki: one run, one unassigned membership."""
    ids: dict[str, Any] = {}
    with unit_of_work(session_factory) as s:
        person = new_identity(s, "E1", given_name="Alice", family_name="Clerk")
        erp = Application(name="ERP", connector_kind="manual", settings={})
        wiki = Application(name="Wiki", connector_kind="manual", settings={})
        s.add_all([erp, wiki])
        s.flush()
        grant = Entitlement(application_id=erp.id, native_id="cn=post", name="ERP-Post")
        orphan = Account(application_id=erp.id, native_id="uid=ghost", username="ghost")
        owned = Account(application_id=erp.id, native_id="uid=svc", username="svc",
                        account_type="service", owner_id=person.id)
        gone = Account(application_id=erp.id, native_id="uid=old", username="old",
                       status="deleted")
        wiki_orphan = Account(application_id=wiki.id, native_id="w-42", username=None,
                              status="disabled")
        s.add_all([grant, orphan, owned, gone, wiki_orphan])
        s.flush()

        def new_run(app: Application, day: int, kind: str = "reconciliation",
                    state: str = "succeeded") -> ReconciliationRun:
            row = ReconciliationRun(application_id=app.id, kind=kind, state=state,
                                    started_at=DAY0 + timedelta(days=day),
                                    finished_at=DAY0 + timedelta(days=day, minutes=5))
            s.add(row)
            s.flush()
            return row

        old, latest = new_run(erp, 1), new_run(erp, 3)
        new_run(erp, 4, state="failed")
        aggregation = new_run(erp, 5, kind="aggregation")
        wiki_run = new_run(wiki, 2)
        fix = ProvisioningOperation(
            idempotency_key="fix-1", identity_id=person.id, application_id=erp.id,
            action="disable_account", state="pending", cause="reconciliation",
            cause_id=str(latest.id), account_id=orphan.id)
        s.add(fix)
        s.flush()
        s.add_all([
            DriftItem(run_id=old.id, kind="missing_account", identity_id=person.id),
            DriftItem(run_id=latest.id, kind="orphan_account", account_native_id="uid=ghost",
                      account_id=orphan.id, detail={"reason": "no correlation"},
                      remediation_operation_id=fix.id),
            DriftItem(run_id=latest.id, kind="missing_grant", account_native_id="uid=alice",
                      identity_id=person.id, entitlement_id=grant.id,
                      entitlement_native_id="cn=post"),
            DriftItem(run_id=aggregation.id, kind="orphan_account",
                      account_native_id="uid=ghost", account_id=orphan.id),
            DriftItem(run_id=wiki_run.id, kind="unassigned_membership",
                      account_native_id="w-7", entitlement_native_id="editors"),
        ])
        ids.update(latest=latest.id, wiki_run=wiki_run.id, orphan_seen=orphan.created_at,
                   wiki_seen=wiki_orphan.created_at)
    return ids


def test_drift_of_each_applications_latest_reconciliation(
        session_factory: sessionmaker[Session], clock: FixedClock,
        drift_world: dict[str, Any]) -> None:
    latest, wiki_run = drift_world["latest"], drift_world["wiki_run"]
    d = DAY0
    rows = run(session_factory, clock, drift.DRIFT)
    assert [r[:11] + r[12:] for r in rows] == [
        ("ERP", latest, d + timedelta(days=3), d + timedelta(days=3, minutes=5),
         "missing_grant", "uid=alice", None, "E1", "Alice Clerk", "ERP-Post", "cn=post", None),
        ("ERP", latest, d + timedelta(days=3), d + timedelta(days=3, minutes=5),
         "orphan_account", "uid=ghost", "ghost", None, None, None, None, "pending"),
        ("Wiki", wiki_run, d + timedelta(days=2), d + timedelta(days=2, minutes=5),
         "unassigned_membership", "w-7", None, None, None, None, "editors", None),
    ]
    assert '"reason"' in rows[1][11] and "no correlation" in rows[1][11]
    assert [(r[0], r[4]) for r in run(session_factory, clock, drift.DRIFT,
                                      application="ERP", kind="orphan_account")] == [
        ("ERP", "orphan_account")]


def test_orphan_accounts_are_those_nobody_holds_or_owns(
        session_factory: sessionmaker[Session], clock: FixedClock,
        drift_world: dict[str, Any]) -> None:
    assert run(session_factory, clock, drift.ORPHANS) == [
        ("ERP", "uid=ghost", "ghost", "primary", "active", drift_world["orphan_seen"]),
        ("Wiki", "w-42", None, "primary", "disabled", drift_world["wiki_seen"]),
    ]
    assert [r[1] for r in run(session_factory, clock, drift.ORPHANS, application="Wiki")] == [
        "w-42"]
