"""A small finance catalog through the API, people and assignments via the ORM."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.catalog.factories import Api, add_application, add_assignment, add_identity


@pytest.fixture
def api(client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> Api:
    return Api(client, admin_headers, add_application(session_factory))


@pytest.fixture
def org(api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> dict[str, Any]:
    """Finance Clerk includes AP Processor, which grants payments-release; rule "Pay vs
    vendor" forbids payments-release with vendor-write. E1 holds the clerk role and
    vendor-write (violation), E2 only the clerk role (none), E3 both with an active
    exception (mitigated). Everything starts at the clock's now."""
    ids: dict[str, Any] = {
        "clerk": api.role("Finance Clerk"), "ap": api.role("AP Processor", kind="technical"),
        "pay": api.entitlement("payments-release", risk="high"),
        "vendor": api.entitlement("vendor-write")}
    api.include(ids["clerk"], ids["ap"])
    api.grant(ids["ap"], ids["pay"])
    ids["rule"] = api.ok("POST", "/sod-rules", 201, json={
        "name": "Pay vs vendor", "severity": "critical",
        "side_a": [{"entitlement_id": ids["pay"]}],
        "side_b": [{"entitlement_id": ids["vendor"]}]})["id"]
    ids["other_rule"] = api.ok("POST", "/sod-rules", 201, json={
        "name": "Clerk vs vendor", "severity": "medium",
        "side_a": [{"role_id": ids["clerk"]}],
        "side_b": [{"entitlement_id": ids["vendor"]}]})["id"]
    start = clock.now()
    for who in ("E1", "E2", "E3"):
        ids[who] = add_identity(session_factory, who)
    for who in ("E1", "E2", "E3"):
        ids[f"{who}-clerk"] = add_assignment(session_factory, identity_id=ids[who],
                                             role_id=ids["clerk"], valid_from=start,
                                             source="request")
    for who in ("E1", "E3"):
        ids[f"{who}-vendor"] = add_assignment(session_factory, identity_id=ids[who],
                                              entitlement_id=ids["vendor"], valid_from=start)
    approver = add_identity(session_factory, "M1")
    ids["exception"] = api.ok("POST", f"/sod-rules/{ids['rule']}/exceptions", 201, json={
        "identity_id": ids["E3"], "approver_id": approver, "control": "monthly review",
        "expires_at": (start + timedelta(days=90)).isoformat()})["id"]
    clock.advance(timedelta(hours=1))
    return ids
