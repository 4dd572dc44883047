"""A small organisation, a catalog and three request types, built through the API.

    ceo
    ├── director ── manager ──┬── alice
    │                         └── bob
    ├── owner        owns every entitlement below
    ├── controller   owns the mitigating control "Monthly payment review"
    ├── sec1, sec2   the group "Security officers" (dual control of privileged access)
    ├── deputy       a colleague approvers delegate to
    └── outsider, leaver (terminated)

Entitlements of "Finance ERP": Wiki (low), Ledger (medium), DBA (high, privileged),
Payables and Payments (low; the SoD rule "Enter and pay invoices" forbids both, exceptions
allowed), HR records (low, pii), Break glass (medium, at most 30 days).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.identity import Identity
from idgov.models.notifications import Notification
from tests.catalog.factories import Api, add_application, add_identity
from tests.conftest import PersonHeaders

FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "justification": {"type": "string", "minLength": 10, "maxLength": 2000},
        "ticket_reference": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"},
        "data_handling_acknowledged": {"type": "boolean"},
    },
    "required": ["justification"],
    "additionalProperties": False,
}
FORM = {"justification": "Needed for the month-end close"}


@dataclass
class World:
    client: TestClient
    people: PersonHeaders
    admin: dict[str, str]
    factory: sessionmaker[Session]
    clock: FixedClock
    ids: dict[str, str] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return self.people[self.ids[who]]

    # --- calls ---------------------------------------------------------------------------
    def ask(self, who: str, *items: str, type_key: str = "application-access",
            form: dict[str, Any] | None = None, status: int | None = 201,
            **extra: Any) -> Any:
        """POST /requests as ``who`` for entitlements named by their key in ``ids``."""
        line_extra = extra.pop("line", {})
        body = {"request_type": type_key, "form_data": FORM if form is None else form,
                "lines": [{"entitlement_id": self.ids[i], **line_extra} for i in items],
                **extra}
        resp = self.client.post("/requests", json=body, headers=self.as_(who))
        if status is not None:
            assert resp.status_code == status, resp.text
        return resp.json()

    def decide(self, who: str, step_id: str, decision: str = "approve",
               comment: str | None = None) -> Response:
        body: dict[str, Any] = {"decision": decision}
        if comment is not None:
            body["comment"] = comment
        return self.client.post(f"/approvals/{step_id}/decision", json=body,
                                headers=self.as_(who))

    def get(self, who: str, request_id: str) -> Response:
        return self.client.get(f"/requests/{request_id}", headers=self.as_(who))

    def request(self, request_id: str) -> Any:
        resp = self.client.get(f"/requests/{request_id}", headers=self.admin)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def assignments(self, who: str, **params: str) -> list[dict[str, Any]]:
        resp = self.client.get("/assignments", headers=self.admin,
                               params={"identity_id": self.ids[who], **params})
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items

    def outbox(self) -> list[tuple[str, str]]:
        """(kind, recipient name) of every notification, oldest first."""
        names = {v: k for k, v in self.ids.items()}
        with unit_of_work(self.factory) as session:
            rows = session.execute(select(Notification.kind, Notification.recipient_id)
                                   .order_by(Notification.created_at, Notification.kind,
                                             Notification.recipient_id)).all()
        return [(kind, names.get(str(r), str(r))) for kind, r in rows]

    def new_mail(self, seen: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The notifications added since ``seen`` was taken (as a sorted list)."""
        now = self.outbox()
        rest = list(now)
        for item in seen:
            rest.remove(item)
        return sorted(rest)


def waiting(line: dict[str, Any]) -> dict[str, Any]:
    """The one waiting step of a line."""
    steps = [s for s in line["steps"] if s["state"] == "waiting"]
    assert len(steps) == 1, line["steps"]
    return steps[0]


@pytest.fixture
def world(client: TestClient, people: PersonHeaders, admin_headers: dict[str, str],
          session_factory: sessionmaker[Session], clock: FixedClock) -> World:
    w = World(client=client, people=people, admin=admin_headers, factory=session_factory,
              clock=clock)
    ids = w.ids
    ids["ceo"] = add_identity(session_factory, "CEO")
    ids["director"] = add_identity(session_factory, "DIR", ids["ceo"])
    ids["manager"] = add_identity(session_factory, "MGR", ids["director"])
    ids["alice"] = add_identity(session_factory, "ALICE", ids["manager"])
    ids["bob"] = add_identity(session_factory, "BOB", ids["manager"])
    for name in ("owner", "controller", "sec1", "sec2", "deputy", "outsider", "leaver"):
        ids[name] = add_identity(session_factory, name.upper(), ids["ceo"])
    with unit_of_work(session_factory) as session:
        leaver = session.get(Identity, uuid.UUID(ids["leaver"]))
        assert leaver is not None
        leaver.lifecycle_state = "terminated"

    api = Api(client, admin_headers, add_application(session_factory))
    owner = {"owner_id": ids["owner"]}
    ids["wiki"] = api.entitlement("Wiki", **owner)
    ids["ledger"] = api.entitlement("Ledger", risk="medium", **owner)
    ids["dba"] = api.entitlement("DBA", risk="high", privileged=True, **owner)
    ids["payables"] = api.entitlement("Payables", **owner)
    ids["payments"] = api.entitlement("Payments", **owner)
    ids["hr"] = api.entitlement("HR records", data_classification="pii", **owner)
    ids["glass"] = api.entitlement("Break glass", risk="medium", max_duration_days=30, **owner)
    ids["rule"] = api.ok("POST", "/sod-rules", 201, json={
        "name": "Enter and pay invoices", "severity": "high", "exception_allowed": True,
        "side_a": [{"entitlement_id": ids["payables"]}],
        "side_b": [{"entitlement_id": ids["payments"]}]})["id"]
    ids["officers"] = api.ok("POST", "/groups", 201, json={"name": "Security officers"})["id"]
    for member in ("sec1", "sec2"):
        api.ok("POST", f"/groups/{ids['officers']}/members", 201,
               json={"identity_id": ids[member]})
    for body in request_types(ids["officers"]):
        api.ok("POST", "/request-types", 201, json=body)
    return w


def request_types(officers: str) -> list[dict[str, Any]]:
    """The request types of the stories (the same shape as the demo's)."""
    return [
        {"key": "application-access", "name": "Application access",
         "form_schema": FORM_SCHEMA, "auto_approve_max_risk": "low",
         "approval_stages": [{"approver": "manager"}, {"approver": "owner"}],
         "approval_sla_hours": 48},
        {"key": "privileged-access", "name": "Privileged access",
         "form_schema": FORM_SCHEMA, "approval_stages": [{"approver": "manager"}],
         "dual_control_group_id": officers},
        {"key": "temporary-elevated-access", "name": "Temporary elevated access",
         "form_schema": FORM_SCHEMA, "approval_stages": [{"approver": "manager"}],
         "duration_required": True, "max_duration_days": 14},
    ]
