"""The entitlement and privileged access reports: every way access is held, with its
justification, approvers, dates and certification; filters; registration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import InvalidInput, NotFound
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role, RoleEntitlement, RoleInclusion
from idgov.models.hr import BirthrightRule
from idgov.models.requests import (
    AccessRequest,
    Approval,
    ApprovalStep,
    RequestLine,
    RequestType,
)
from idgov.reports import definitions, entitlements, privileged, registry
from tests.catalog.factories import new_identity

DAY0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PAY, LEDGER, VENDOR = "vendor-payments-approve", "ledger-read", "vendor-master-edit"
VIA = "role: AP Manager > Payments Approver"


def run(factory: sessionmaker[Session], clock: FixedClock, report: registry.ReportDef,
        columns: Sequence[str], **params: Any) -> list[tuple[Any, ...]]:
    with unit_of_work(factory) as session:
        query = report.build(session, report.params.model_validate(params), clock)
        assert query.columns == report.columns
        assert query.select is not None
        rows = session.execute(query.select).all()
    pick = [report.columns.index(c) for c in columns]
    return [tuple(row[i] for i in pick) for row in rows]


def _catalog(s: Session, ids: dict[str, Any]) -> None:
    app = Application(name="Finance ERP", connector_kind="manual", settings={})
    other = Application(name="Wiki", connector_kind="manual", settings={})
    s.add_all([app, other])
    s.flush()
    ents = {PAY: ("high", True), LEDGER: ("low", False), VENDOR: ("medium", False)}
    for name, (risk, flag) in ents.items():
        row = Entitlement(application_id=app.id, native_id=f"cn={name}", name=name,
                          risk=risk, privileged=flag)
        s.add(row)
        s.flush()
        ids[name] = row.id
    wiki = Entitlement(application_id=other.id, native_id="wiki-admin", name="wiki-admin",
                       risk="critical", privileged=False)
    apm, approver = Role(name="AP Manager"), Role(name="Payments Approver", kind="technical")
    s.add_all([wiki, apm, approver])
    s.flush()
    ids.update(app=app.id, wiki=wiki.id, apm=apm.id, approver=approver.id)
    s.add_all([
        RoleInclusion(parent_role_id=apm.id, child_role_id=approver.id, valid_from=DAY0),
        RoleEntitlement(role_id=apm.id, entitlement_id=ids[LEDGER], valid_from=DAY0),
        # Added to the role on day 3: held through the role from then on.
        RoleEntitlement(role_id=approver.id, entitlement_id=ids[PAY],
                        valid_from=DAY0 + timedelta(days=3)),
        # An ended link gives nothing now.
        RoleEntitlement(role_id=approver.id, entitlement_id=ids[VENDOR], valid_from=DAY0,
                        valid_until=DAY0 + timedelta(days=1), end_reason="moved"),
    ])


def _request(s: Session, ids: dict[str, Any]) -> uuid.UUID:
    """REQ-2026-000007 / RITM-2026-000011 for E2's payments approval, approved by M1 and
    then by M2 deciding for M3; a rejection on another step is no approval."""
    rtype = RequestType(key="access", name="Access")
    s.add(rtype)
    s.flush()
    req = AccessRequest(number="REQ-2026-000007", requester_id=ids["E2"],
                        beneficiary_id=ids["E2"], request_type_id=rtype.id, state="fulfilled")
    s.add(req)
    s.flush()
    line = RequestLine(number="RITM-2026-000011", request_id=req.id, beneficiary_id=ids["E2"],
                       entitlement_id=ids[PAY], state="fulfilled", risk="high",
                       privileged=True)
    s.add(line)
    s.flush()
    steps = [ApprovalStep(line_id=line.id, stage=n, kind="manager", label=f"stage {n}",
                          state="approved") for n in (1, 2, 3)]
    s.add_all(steps)
    s.flush()
    s.add_all([
        Approval(step_id=steps[1].id, approver_id=ids["M2"], on_behalf_of_id=ids["M3"],
                 decision="approve", decided_at=DAY0 + timedelta(hours=3)),
        Approval(step_id=steps[0].id, approver_id=ids["M1"], decision="approve",
                 decided_at=DAY0 + timedelta(hours=1)),
        Approval(step_id=steps[2].id, approver_id=ids["M3"], decision="reject",
                 decided_at=DAY0 + timedelta(hours=4)),
    ])
    return line.id


@pytest.fixture
def ids(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """E1 (Finance, manager M1) holds AP Manager by birthright and has an account; E2
    (Finance, manager M1) holds payments approval by request and AP Manager by an admin
    grant until day 30; E3 (Sales, manager M2) holds vendor-master-edit by aggregation
    (certified on day 2) and wiki-admin, and had payments approval until it was revoked."""
    ids: dict[str, Any] = {}
    with unit_of_work(session_factory) as s:
        for key, name in (("M1", "Maria"), ("M2", "Mike"), ("M3", "Mo")):
            ids[key] = new_identity(s, key, given_name=name, family_name="Boss").id
        for key, name, dept, mgr in (("E1", "Alice", "Finance", "M1"),
                                     ("E2", "Bob", "Finance", "M1"),
                                     ("E3", "Carol", "Sales", "M2")):
            ids[key] = new_identity(s, key, given_name=name, family_name="Clerk",
                                    department=dept, manager_id=ids[mgr]).id
        _catalog(s, ids)
        rule = BirthrightRule(name="Finance staff", condition={"all": []}, role_id=ids["apm"])
        s.add(rule)
        s.add(Account(application_id=ids["app"], native_id="uid=alice", username="alice",
                      identity_id=ids["E1"]))
        # A shared account of E1 is not the primary one the report names.
        s.add(Account(application_id=ids["app"], native_id="uid=ap-shared",
                      username="ap-shared", identity_id=ids["E1"], account_type="shared"))
        s.flush()
        line_id = _request(s, ids)
        d = DAY0
        s.add_all([
            Assignment(identity_id=ids["E1"], role_id=ids["apm"], source="birthright",
                       birthright_rule_id=rule.id, reason="birthright rule Finance staff",
                       granted_by="system:hr", valid_from=d),
            Assignment(identity_id=ids["E2"], entitlement_id=ids[PAY], source="request",
                       request_line_id=line_id, granted_by="system:requests",
                       valid_from=d + timedelta(days=1)),
            Assignment(identity_id=ids["E2"], role_id=ids["apm"], source="admin",
                       reason="covers month-end", granted_by="identity:Maria Boss",
                       valid_from=d + timedelta(days=5), valid_until=d + timedelta(days=30)),
            Assignment(identity_id=ids["E3"], entitlement_id=ids[VENDOR], source="aggregation",
                       granted_by="system:aggregation", valid_from=d,
                       last_certified_at=d + timedelta(days=2),
                       last_certified_by="identity:Mike Boss"),
            Assignment(identity_id=ids["E3"], entitlement_id=ids["wiki"], source="admin",
                       reason="wiki gardener", granted_by="identity:Mike Boss", valid_from=d),
            Assignment(identity_id=ids["E3"], entitlement_id=ids[PAY], source="admin",
                       reason="temporary", granted_by="identity:Mike Boss", valid_from=d,
                       revoked_at=d + timedelta(days=4), revoke_reason="done"),
            # Starts tomorrow: not held yet.
            Assignment(identity_id=ids["E3"], entitlement_id=ids[LEDGER], source="admin",
                       reason="from tomorrow", valid_from=d + timedelta(days=11)),
        ])
    return ids


NOW = DAY0 + timedelta(days=10)


@pytest.fixture
def now(clock: FixedClock) -> FixedClock:
    clock.set(NOW)
    return clock


def test_every_grant_with_how_and_why(session_factory: sessionmaker[Session],
                                      ids: dict[str, Any], now: FixedClock) -> None:
    d = DAY0
    rows = run(session_factory, now, entitlements.REPORT, (
        "employee_id", "identity_name", "department", "manager_employee_id", "manager_name",
        "application", "account", "account_native_id", "entitlement", "how_held", "source",
        "request_number", "request_line_number", "birthright_rule", "reason", "approvers",
        "granted_by", "granted_at", "held_since", "expires_at", "last_certified_at",
        "last_certified_by", "risk", "privileged"))
    assert rows == [
        ("E1", "Alice Clerk", "Finance", "M1", "Maria Boss", "Finance ERP", "alice",
         "uid=alice", LEDGER, "role: AP Manager", "birthright", None, None, "Finance staff",
         "birthright rule Finance staff", None, "system:hr", d, d, None, None, None, "low",
         False),
        ("E1", "Alice Clerk", "Finance", "M1", "Maria Boss", "Finance ERP", "alice",
         "uid=alice", PAY, VIA, "birthright", None, None, "Finance staff",
         "birthright rule Finance staff", None, "system:hr", d, d + timedelta(days=3), None,
         None, None, "high", True),
        ("E2", "Bob Clerk", "Finance", "M1", "Maria Boss", "Finance ERP", None, None, LEDGER,
         "role: AP Manager", "admin", None, None, None, "covers month-end", None,
         "identity:Maria Boss", d + timedelta(days=5), d + timedelta(days=5),
         d + timedelta(days=30), None, None, "low", False),
        # Held twice: by request (with its approvers, in the order they decided) and through
        # the role granted for month-end.
        ("E2", "Bob Clerk", "Finance", "M1", "Maria Boss", "Finance ERP", None, None, PAY,
         "direct", "request", "REQ-2026-000007", "RITM-2026-000011", None, None,
         "Maria Boss (M1); Mike Boss (M2) for Mo Boss (M3)", "system:requests",
         d + timedelta(days=1), d + timedelta(days=1), None, None, None, "high", True),
        ("E2", "Bob Clerk", "Finance", "M1", "Maria Boss", "Finance ERP", None, None, PAY,
         VIA, "admin", None, None, None, "covers month-end", None, "identity:Maria Boss",
         d + timedelta(days=5), d + timedelta(days=5), d + timedelta(days=30), None, None,
         "high", True),
        ("E3", "Carol Clerk", "Sales", "M2", "Mike Boss", "Finance ERP", None, None, VENDOR,
         "direct", "aggregation", None, None, None, None, None, "system:aggregation", d, d,
         None, d + timedelta(days=2), "identity:Mike Boss", "medium", False),
        ("E3", "Carol Clerk", "Sales", "M2", "Mike Boss", "Wiki", None, None, "wiki-admin",
         "direct", "admin", None, None, None, "wiki gardener", None, "identity:Mike Boss", d,
         d, None, None, None, "critical", False),
    ]


@pytest.mark.parametrize(("params", "expected"), [
    ({"application": "Wiki"}, [("E3", "wiki-admin")]),
    ({"entitlement": PAY}, [("E1", PAY), ("E2", PAY), ("E2", PAY)]),
    ({"entitlement": "cn=vendor-master-edit"}, [("E3", VENDOR)]),
    ({"department": "Sales"}, [("E3", VENDOR), ("E3", "wiki-admin")]),
    ({"manager": "M1", "min_risk": "medium"}, [("E1", PAY), ("E2", PAY), ("E2", PAY)]),
    ({"identity": "E2", "privileged": False}, [("E2", LEDGER)]),
    ({"min_risk": "critical"}, [("E3", "wiki-admin")]),
    ({"source": "aggregation"}, [("E3", VENDOR)]),
    ({"source": "request", "department": "Sales"}, []),
])
def test_filters_narrow_the_report(session_factory: sessionmaker[Session], ids: dict[str, Any],
                                   now: FixedClock, params: dict[str, Any],
                                   expected: list[tuple[str, str]]) -> None:
    assert run(session_factory, now, entitlements.REPORT, ("employee_id", "entitlement"),
               **params) == expected


@pytest.mark.parametrize(("params", "field"), [
    ({"application": "Payroll"}, "application"),
    ({"entitlement": "no-such-thing"}, "entitlement"),
    ({"manager": "M9"}, "manager"),
    ({"identity": str(uuid.UUID(int=7))}, "identity"),
])
def test_a_filter_naming_nothing_is_refused(session_factory: sessionmaker[Session],
                                            ids: dict[str, Any], now: FixedClock,
                                            params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run(session_factory, now, entitlements.REPORT, ("employee_id",), **params)
    assert [e.field for e in caught.value.errors] == [field]


@pytest.mark.parametrize("params", [{"risk": "high"}, {"min_risk": "severe"},
                                    {"source": "magic"}, {"privileged": "perhaps"}])
def test_unknown_or_malformed_filters_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        entitlements.EntitlementFilters.model_validate(params)


def test_privileged_and_high_risk_holders(session_factory: sessionmaker[Session],
                                          ids: dict[str, Any], now: FixedClock) -> None:
    d = DAY0
    shown = ("employee_id", "entitlement", "risk", "privileged", "how_held", "held_since",
             "last_certified_at")
    assert run(session_factory, now, privileged.REPORT, shown) == [
        ("E1", PAY, "high", True, VIA, d + timedelta(days=3), None),
        ("E2", PAY, "high", True, "direct", d + timedelta(days=1), None),
        ("E2", PAY, "high", True, VIA, d + timedelta(days=5), None),
        ("E3", "wiki-admin", "critical", False, "direct", d, None),
    ]
    assert run(session_factory, now, privileged.REPORT, ("employee_id", "entitlement"),
               privileged_only=True, department="Finance", manager="M1") == [
        ("E1", PAY), ("E2", PAY), ("E2", PAY)]
    assert run(session_factory, now, privileged.REPORT, ("employee_id", "entitlement"),
               min_risk="medium", application="Finance ERP") == [
        ("E1", PAY), ("E2", PAY), ("E2", PAY), ("E3", VENDOR)]


def test_core_reports_register_once_whatever_the_calls() -> None:
    definitions.register_core_reports()
    definitions.register_core_reports()
    names = [r.name for r in registry.all_reports()]
    for name in ("drift", "entitlements", "entitlements_as_of", "jml", "orphan_accounts",
                 "privileged_access", "sod_exceptions", "sod_violations"):
        assert names.count(name) == 1
        report = registry.get_report(name)
        assert report.columns and all(c == c.lower() and " " not in c for c in report.columns)
        assert issubclass(report.params, BaseModel)
    with pytest.raises(NotFound):
        registry.get_report("everything")
