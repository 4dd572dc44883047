"""The audit coverage scenario: every mutating route of the API, each call checked for its events.

:class:`AuditedApi` calls the API as the test administrator and, after each call, reads the
events that call sealed into the chain: the expected action on the expected object, the
administrator as actor, and ``before``/``after`` as the kind of change requires. Each call
names its route template next to it, so the routes exercised can be compared with the routes
the application serves (:func:`mutating_routes`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.audit import AuditEvent
from idgov.models.auth import ServicePrincipal
from idgov.models.catalog import Entitlement
from idgov.models.provisioning import ProvisioningOperation
from idgov.notifications.service import notify
from idgov.provisioning.engine import run_until_idle
from tests.audit_scenario_cert import run_certification_scenario
from tests.audit_scenario_hr import run_hr_scenario
from tests.audit_scenario_siem import run_siem_scenario

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ADMIN_NAME = "test-admin"  # the principal behind the ``admin_headers`` fixture

# create: the new state only; update: the state before and after; delete: the old state only.
Change = Literal["create", "update", "delete"]
Route = tuple[str, str]  # (method, path template)


def mutating_routes(app: FastAPI) -> set[Route]:
    """(method, path template) of every API route of ``app`` that may change state. The web
    pages' forms (routes left out of the OpenAPI document, under /ui/) call the same service
    functions as these routes; their effects are checked in tests/ui."""
    routes: set[Route] = set()
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        if not context.original_route.include_in_schema:
            continue
        assert context.path is not None
        for method in (context.methods or set()) & MUTATING_METHODS:
            routes.add((method, context.path))
    return routes


def event_text(event: AuditEvent) -> str:
    """Every column of an event as one text, to search it for secrets."""
    return repr({column: getattr(event, column) for column in (
        "actor_type", "actor_id", "actor_name", "action", "object_type", "object_id",
        "before", "after", "context", "hash", "signature")})


@dataclass
class AuditedApi:
    """The API as the test administrator, with the audit events of every call checked."""

    client: TestClient
    headers: dict[str, str]
    factory: sessionmaker[Session]
    clock: FixedClock
    exercised: set[Route] = field(default_factory=set)
    admin_id: str = ""
    last_seq: int = 0

    def __post_init__(self) -> None:
        with self.factory() as session:
            principal_id = session.scalar(
                select(ServicePrincipal.id).where(ServicePrincipal.name == ADMIN_NAME))
            assert principal_id is not None, "admin_headers must have created the principal"
            self.admin_id = str(principal_id)
            self.last_seq = session.scalar(select(func.max(AuditEvent.seq))) or 0

    def new_events(self) -> list[AuditEvent]:
        """Events sealed since the last call; none may be left unsealed."""
        with self.factory() as session:
            unsealed = session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None)))
            assert unsealed == 0, "events were committed without being sealed into the chain"
            events = list(session.scalars(
                select(AuditEvent).where(AuditEvent.seq > self.last_seq)
                .order_by(AuditEvent.seq)))
        if events:
            assert events[-1].seq is not None
            self.last_seq = events[-1].seq
        return events

    def call(
        self,
        method: str,
        template: str,
        *,
        path: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        action: str,
        object_type: str,
        change: Change,
        object_id: str | None = None,
        shows: dict[str, Any] | None = None,
        was: dict[str, Any] | None = None,
        as_person: tuple[str, str] | None = None,
        content: bytes | None = None,
        content_type: str = "text/csv",
    ) -> dict[str, Any]:
        """Call ``method template`` (2xx expected) and check the audit event it must leave.

        ``object_id`` defaults to the ``id`` of the answer. ``shows``: values the event's new
        state holds (its old state for a delete); ``was``: values its old state held.
        ``as_person``: (identity id, display name) of a person making the call instead of the
        administrator (requests, approvals, delegations are a person's acts); the events must
        then name that person as actor. ``content``: a raw body (a CSV upload) instead of JSON.
        """
        url = template.format(**(path or {}))
        headers = self.headers
        expected_actor = ("service_principal", ADMIN_NAME, self.admin_id)
        if as_person is not None:
            headers = {"Authorization": f"Bearer person:{as_person[0]}"}
            expected_actor = ("identity", as_person[1], as_person[0])
        if content is not None:
            headers = {**headers, "Content-Type": content_type}
        resp = self.client.request(method, url, json=json, params=params, headers=headers,
                                   content=content)
        where = f"{method} {template}"
        assert 200 <= resp.status_code < 300, f"{where}: {resp.status_code} {resp.text}"
        self.exercised.add((method, template))
        body: dict[str, Any] = resp.json() if resp.content else {}
        expected_id = object_id or body.get("id")
        assert expected_id, f"{where}: say which object the event is about"
        events = self.new_events()
        assert events, f"{where} changed state but wrote no audit event"
        for event in events:
            assert (event.actor_type, event.actor_name, event.actor_id) == expected_actor, (
                f"{where}: actor of {event.action}")
            assert event.occurred_at == self.clock.now(), f"{where}: time of {event.action}"
        matching = [e for e in events if (e.action, e.object_type, e.object_id)
                    == (action, object_type, str(expected_id))]
        assert len(matching) == 1, (
            f"{where}: expected one {action} event on {object_type} {expected_id}, got "
            f"{[(e.action, e.object_type, e.object_id) for e in events]}")
        self._check_states(where, matching[0], change, shows or {}, was or {})
        self.clock.advance(timedelta(minutes=1))
        return body

    @staticmethod
    def _check_states(where: str, event: AuditEvent, change: Change, shows: dict[str, Any],
                      was: dict[str, Any]) -> None:
        if change == "create":
            assert event.before is None and event.after, f"{where}: a creation has only 'after'"
        elif change == "update":
            assert event.before and event.after, f"{where}: a change has 'before' and 'after'"
            assert event.before != event.after, f"{where}: 'before' and 'after' are the same"
        else:
            assert event.before and event.after is None, f"{where}: a deletion has only 'before'"
        state = event.before if change == "delete" else event.after
        assert state is not None
        for key, value in shows.items():
            assert state.get(key) == value, f"{where}: {key} is {state.get(key)!r}, not {value!r}"
        for key, value in was.items():
            assert event.before is not None
            assert event.before.get(key) == value, f"{where}: {key} was {event.before.get(key)!r}"

    def read_only(self, method: str, template: str, *, path: dict[str, str],
                  json: dict[str, Any] | None = None) -> dict[str, Any]:
        """A POST that only computes (a preview): it answers 2xx and leaves no event."""
        resp = self.client.request(method, template.format(**path), json=json,
                                   headers=self.headers)
        assert 200 <= resp.status_code < 300, f"{method} {template}: {resp.status_code} {resp.text}"
        assert self.new_events() == [], f"{method} {template} is read-only but left events"
        self.exercised.add((method, template))
        body: dict[str, Any] = resp.json()
        return body

    def refused(self, method: str, template: str, *, path: dict[str, str], status: int) -> None:
        """A refused change answers ``status`` and leaves no event (nothing half-applied)."""
        resp = self.client.request(method, template.format(**path), headers=self.headers)
        assert resp.status_code == status, f"{method} {template}: {resp.status_code} {resp.text}"
        assert self.new_events() == [], f"{method} {template} was refused but left events"


@dataclass
class Secrets:
    """What the scenario handed over that must never appear in the audit trail."""

    values: list[str] = field(default_factory=list)

    def add(self, *values: str) -> None:
        self.values.extend(v for v in values if v)


def _person(employee_id: str, given: str, family: str) -> dict[str, Any]:
    return {"employee_id": employee_id, "given_name": given, "family_name": family,
            "email": f"{given.lower()}.{family.lower()}@example.com"}


def run_scenario(api: AuditedApi) -> Secrets:
    """Call every mutating route of the API once, in an order a real administrator might."""
    secrets = Secrets()
    c = api.call

    # People ---------------------------------------------------------------------------------
    alice = c("POST", "/identities", json=_person("A1", "Alice", "Archer"),
              action="identity.create", object_type="identity", change="create",
              shows={"employee_id": "A1"})["id"]
    bob = c("POST", "/identities", json=_person("B2", "Bob", "Baker") | {"manager_id": alice},
            action="identity.create", object_type="identity", change="create",
            shows={"manager_id": alice})["id"]
    carol = c("POST", "/identities", json=_person("C3", "Carol", "Cole"),
              action="identity.create", object_type="identity", change="create")["id"]
    dave = c("POST", "/identities", json=_person("D4", "Dave", "Dent"),
             action="identity.create", object_type="identity", change="create")["id"]
    c("PATCH", "/identities/{identity_id}", path={"identity_id": bob},
      json={"department": "Finance"}, action="identity.update", object_type="identity",
      change="update", shows={"department": "Finance"}, was={"department": None})

    # Notifications: only a person marks their own notice read ------------------------------
    with unit_of_work(api.factory) as session:
        notice = notify(session, recipient_id=uuid.UUID(bob), kind="request.submitted",
                        subject="REQ-2026-000001 submitted", body="Your request was submitted.",
                        clock=api.clock)
        assert notice is not None
        notice_id = str(notice.id)
    assert api.new_events() == [], "notifying is not audited"
    c("POST", "/me/notifications/{notification_id}/read", path={"notification_id": notice_id},
      object_id=notice_id, action="notification.read", object_type="notification",
      change="update", was={"read_at": None}, as_person=(bob, "Bob Baker"))

    # Delegations (a person's act) and delegated authority levels ------------------------------
    ends = (api.clock.now() + timedelta(days=7)).isoformat()
    delegation = c("POST", "/delegations",
                   json={"delegate_id": alice, "ends_at": ends, "max_risk": "medium",
                         "reason": "Holiday"},
                   action="delegation.create", object_type="delegation", change="create",
                   shows={"delegator_id": bob, "delegate_id": alice},
                   as_person=(bob, "Bob Baker"))["id"]
    c("POST", "/delegations/{delegation_id}/revoke", path={"delegation_id": delegation},
      action="delegation.revoke", object_type="delegation", change="update",
      was={"revoked_at": None}, as_person=(bob, "Bob Baker"))
    authority = c("PUT", "/approval-authorities/{identity_id}", path={"identity_id": alice},
                  json={"max_risk": "high"}, action="approval_authority.set",
                  object_type="approval_authority", change="create",
                  shows={"identity_id": alice, "max_risk": "high"})["id"]
    c("PUT", "/approval-authorities/{identity_id}", path={"identity_id": alice},
      json={"max_risk": "critical"}, action="approval_authority.set",
      object_type="approval_authority", change="update", shows={"max_risk": "critical"},
      was={"max_risk": "high"})
    c("DELETE", "/approval-authorities/{identity_id}", path={"identity_id": alice},
      object_id=authority, action="approval_authority.remove",
      object_type="approval_authority", change="delete", shows={"max_risk": "critical"})

    # Groups -----------------------------------------------------------------------------------
    resolvers = c("POST", "/groups", json={"name": "IAM operations", "kind": "resolution"},
                  action="group.create", object_type="group", change="create",
                  shows={"kind": "resolution"})["id"]
    team = c("POST", "/groups", json={"name": "Short-lived team"},
             action="group.create", object_type="group", change="create")["id"]
    c("PATCH", "/groups/{group_id}", path={"group_id": resolvers},
      json={"description": "Works failed provisioning"}, action="group.update",
      object_type="group", change="update", shows={"description": "Works failed provisioning"})
    c("POST", "/groups/{group_id}/members", path={"group_id": resolvers},
      json={"identity_id": bob}, action="group.member_add", object_type="group",
      object_id=resolvers, change="create", shows={"identity_id": bob})

    # Applications and accounts ----------------------------------------------------------------
    bind_password = f"bind-{uuid.uuid4().hex}"
    rotated_password = f"rotated-{uuid.uuid4().hex}"
    client_secret = f"client-{uuid.uuid4().hex}"
    secrets.add(bind_password, rotated_password, client_secret)
    ldap = c("POST", "/applications",
             json={"name": "Corporate LDAP", "connector_kind": "ldap",
                   "settings": {"host": "ldap.example.com", "base_dn": "dc=example,dc=com"},
                   "credentials": {"bind_password": bind_password}, "owner_id": alice,
                   "resolution_group_id": resolvers, "risk": "high"},
             action="application.create", object_type="application", change="create",
             shows={"has_credentials": True})["id"]
    spare = c("POST", "/applications",
              json={"name": "Spare tenant", "connector_kind": "entra",
                    "credentials": {"client_secret": client_secret}},
              action="application.create", object_type="application", change="create")["id"]
    c("PATCH", "/applications/{application_id}", path={"application_id": ldap},
      json={"description": "Staff directory", "credentials": {"bind_password": rotated_password}},
      action="application.update", object_type="application", change="update",
      shows={"description": "Staff directory", "credentials_changed": True})
    account = c("POST", "/accounts",
                json={"application_id": ldap, "native_id": "uid=bob,ou=people,dc=example,dc=com",
                      "username": "bob", "identity_id": bob},
                action="account.create", object_type="account", change="create",
                shows={"identity_id": bob})["id"]
    c("PATCH", "/accounts/{account_id}", path={"account_id": account},
      json={"status": "disabled"}, action="account.update", object_type="account",
      change="update", shows={"status": "disabled"}, was={"status": "active"})

    # Catalog: entitlements, roles, composition ------------------------------------------------
    def entitlement(native_id: str, name: str) -> str:
        body = c("POST", "/entitlements",
                 json={"application_id": ldap, "native_id": native_id, "name": name},
                 action="entitlement.create", object_type="entitlement", change="create",
                 shows={"native_id": native_id})
        return str(body["id"])

    payables = entitlement("cn=payables,ou=groups,dc=example,dc=com", "Payables")
    payments = entitlement("cn=payments,ou=groups,dc=example,dc=com", "Payments")
    mistake = entitlement("cn=typo,ou=groups,dc=example,dc=com", "Typo")
    c("PATCH", "/entitlements/{entitlement_id}", path={"entitlement_id": payments},
      json={"risk": "high", "privileged": True}, action="entitlement.update",
      object_type="entitlement", change="update", shows={"risk": "high"}, was={"risk": "low"})
    clerk = c("POST", "/roles", json={"name": "AP clerk", "owner_id": alice},
              action="role.create", object_type="role", change="create")["id"]
    base = c("POST", "/roles", json={"name": "Finance base", "kind": "technical"},
             action="role.create", object_type="role", change="create")["id"]
    unused_role = c("POST", "/roles", json={"name": "Created by mistake"},
                    action="role.create", object_type="role", change="create")["id"]
    c("PATCH", "/roles/{role_id}", path={"role_id": clerk},
      json={"description": "Enters supplier invoices"}, action="role.update",
      object_type="role", change="update", shows={"description": "Enters supplier invoices"})
    c("POST", "/roles/{role_id}/included-roles", path={"role_id": clerk},
      json={"role_id": base}, action="role.include_role", object_type="role",
      object_id=clerk, change="create", shows={"child_role_id": base})
    c("POST", "/roles/{role_id}/entitlements", path={"role_id": base},
      json={"entitlement_id": payables}, action="role.add_entitlement", object_type="role",
      object_id=base, change="create", shows={"entitlement_id": payables})

    # SoD rules and exceptions -------------------------------------------------------------------
    sides = {"side_a": [{"entitlement_id": payables}], "side_b": [{"entitlement_id": payments}]}
    rule = c("POST", "/sod-rules", json={"name": "Enter and pay invoices"} | sides,
             action="sod_rule.create", object_type="sod_rule", change="create")["id"]
    draft = c("POST", "/sod-rules", json={"name": "Draft rule"} | sides,
              action="sod_rule.create", object_type="sod_rule", change="create")["id"]
    c("PATCH", "/sod-rules/{rule_id}", path={"rule_id": rule}, json={"severity": "critical"},
      action="sod_rule.update", object_type="sod_rule", change="update",
      shows={"severity": "critical"}, was={"severity": "high"})
    expires = (api.clock.now() + timedelta(days=30)).isoformat()
    exception = c("POST", "/sod-rules/{rule_id}/exceptions", path={"rule_id": rule},
                  json={"identity_id": bob, "control": "Monthly payment review",
                        "approver_id": alice, "expires_at": expires},
                  action="sod_exception.grant", object_type="sod_exception",
                  change="create", shows={"identity_id": bob})["id"]
    c("POST", "/sod-rules/{rule_id}/exceptions/{exception_id}/revoke",
      path={"rule_id": rule, "exception_id": exception}, json={"reason": "Control retired"},
      action="sod_exception.revoke", object_type="sod_exception", change="update",
      shows={"revoke_reason": "Control retired"}, was={"revoked_at": None})

    # Assignments --------------------------------------------------------------------------------
    assignment = c("POST", "/assignments",
                   json={"identity_id": bob, "role_id": clerk, "reason": "Joined AP team"},
                   action="assignment.grant", object_type="assignment", change="create",
                   shows={"identity_id": bob, "role_id": clerk, "source": "admin"})["id"]
    # Previewing a composition change saves nothing and writes no event.
    impact = api.read_only("POST", "/roles/{role_id}/impact", path={"role_id": base},
                           json={"add_entitlements": [payments]})
    assert (impact["holders"], impact["operations_expected"]) == (1, 1)
    assert [v["rule"]["name"] for v in impact["new_sod_violations"]] == ["Draft rule",
        "Enter and pay invoices"]
    c("POST", "/assignments/{assignment_id}/revoke", path={"assignment_id": assignment},
      json={"reason": "Moved to treasury"}, action="assignment.revoke",
      object_type="assignment", change="update", shows={"revoke_reason": "Moved to treasury"},
      was={"revoked_at": None})

    # Request types, and requests (a person's act) with their approval ---------------------------
    form = {"type": "object", "properties": {"justification": {"type": "string"}},
            "required": ["justification"]}
    rtype = c("POST", "/request-types",
              json={"key": "application-access", "name": "Application access",
                    "form_schema": form},
              action="request_type.create", object_type="request_type", change="create",
              shows={"key": "application-access"})["id"]
    spare_type = c("POST", "/request-types", json={"key": "spare", "name": "Spare"},
                   action="request_type.create", object_type="request_type",
                   change="create")["id"]
    c("PATCH", "/request-types/{request_type_id}", path={"request_type_id": rtype},
      json={"approval_sla_hours": 48}, action="request_type.update", object_type="request_type",
      change="update", shows={"approval_sla_hours": 48}, was={"approval_sla_hours": 72})
    c("DELETE", "/request-types/{request_type_id}", path={"request_type_id": spare_type},
      object_id=spare_type, action="request_type.delete", object_type="request_type",
      change="delete", shows={"key": "spare"})
    bob_person = (bob, "Bob Baker")
    asked = {"request_type": "application-access", "submit": False,
             "form_data": {"justification": "Month-end close"},
             "lines": [{"action": "grant", "entitlement_id": payables}]}
    draft_request = c("POST", "/requests", json=asked, action="request.create",
              object_type="access_request", change="create",
              shows={"state": "draft"}, as_person=bob_person)["id"]
    c("POST", "/requests/{request_id}/submit", path={"request_id": draft_request},
      action="request.submitted", object_type="access_request", change="update",
      shows={"state": "submitted"}, was={"state": "draft"}, as_person=bob_person)
    other = c("POST", "/requests", json=asked, action="request.create",
              object_type="access_request", change="create", as_person=bob_person)["id"]
    c("POST", "/requests/{request_id}/cancel", path={"request_id": other},
      json={"reason": "Not needed"}, action="request.cancelled", object_type="access_request",
      change="update", shows={"state": "cancelled"}, was={"state": "draft"},
      as_person=bob_person)
    inbox = api.client.get("/approvals", headers={"Authorization": f"Bearer person:{alice}"})
    assert inbox.status_code == 200, inbox.text
    step = inbox.json()["items"][0]["step"]["id"]
    c("POST", "/approvals/{step_id}/decision", path={"step_id": step},
      json={"decision": "approve", "comment": "Fine"}, object_id=step,
      action="approval.decide", object_type="approval_step", change="update",
      shows={"state": "approved"}, was={"state": "waiting"}, as_person=(alice, "Alice Archer"))
    api.refused("DELETE", "/request-types/{request_type_id}", path={"request_type_id": rtype},
                status=409)

    # Aggregation and reconciliation (an empty in-memory target; the API offers no "memory"
    # kind, so the scratch application is inserted directly) ---------------------------------
    with unit_of_work(api.factory) as session:
        scratch = Application(name="Scratch target", connector_kind="memory",
                              settings={"target": "audit-scenario"})
        session.add(scratch)
        session.flush()
        memory = str(scratch.id)
    c("POST", "/applications/{application_id}/aggregate", path={"application_id": memory},
      action="reconciliation.aggregate", object_type="reconciliation_run", change="create",
      shows={"kind": "aggregation", "state": "succeeded"})
    c("POST", "/applications/{application_id}/reconcile", path={"application_id": memory},
      json={"remediate": True}, action="reconciliation.reconcile",
      object_type="reconciliation_run", change="create",
      shows={"kind": "reconciliation", "state": "succeeded", "remediate": True})

    # The failed-operations queue: retry, resolve by hand, cancel. Operations in the states
    # these act on are put in place directly (the engine's own paths are tested with it).
    with unit_of_work(api.factory) as session:
        scratch_group = Entitlement(application_id=uuid.UUID(memory), native_id="scratch",
                                    name="Scratch group")
        session.add(scratch_group)
        session.flush()
        queued = {}
        for state in ("failed", "failed", "pending"):
            op = ProvisioningOperation(
                idempotency_key=f"scenario:{uuid.uuid4()}", identity_id=uuid.UUID(bob),
                application_id=uuid.UUID(memory), entitlement_id=scratch_group.id,
                action="grant", state=state, cause="assignment", attempts=1,
                error_category="data_error" if state == "failed" else None,
                created_at=api.clock.now(), updated_at=api.clock.now())
            session.add(op)
            session.flush()
            queued.setdefault(state, []).append(str(op.id))
    api.new_events()  # what the set-up wrote is not the routes' doing
    c("POST", "/provisioning/operations/{operation_id}/retry",
      path={"operation_id": queued["failed"][0]}, object_id=queued["failed"][0],
      action="provisioning.retry", object_type="provisioning_operation", change="update",
      shows={"state": "pending"}, was={"state": "failed"})
    c("POST", "/provisioning/operations/{operation_id}/resolve",
      path={"operation_id": queued["failed"][1]}, object_id=queued["failed"][1],
      json={"note": "done by hand"}, action="provisioning.resolve",
      object_type="provisioning_operation", change="update", shows={"state": "succeeded"},
      was={"state": "failed"})
    c("POST", "/provisioning/operations/{operation_id}/cancel",
      path={"operation_id": queued["pending"][0]}, object_id=queued["pending"][0],
      action="provisioning.cancel", object_type="provisioning_operation", change="update",
      shows={"state": "cancelled"}, was={"state": "pending"})

    # Manual fulfilment: a member of the resolution group completes one task, fails another ----
    manual = c("POST", "/applications",
               json={"name": "Legacy ERP", "connector_kind": "manual",
                     "resolution_group_id": resolvers},
               action="application.create", object_type="application", change="create")["id"]
    ledger = c("POST", "/entitlements",
               json={"application_id": manual, "native_id": "LEDGER", "name": "Ledger"},
               action="entitlement.create", object_type="entitlement", change="create")["id"]
    for person in (alice, carol):
        c("POST", "/assignments",
          json={"identity_id": person, "entitlement_id": ledger, "reason": "Month-end close"},
          action="assignment.grant", object_type="assignment", change="create")
    run_until_idle(api.factory, settings=None, clock=api.clock)
    api.new_events()  # the engine's own events (the tasks opened) are checked with it
    member = {"Authorization": f"Bearer person:{bob}"}
    tasks = api.client.get("/fulfilment/tasks", headers=member).json()["items"]
    assert len(tasks) == 2, tasks
    c("POST", "/fulfilment/tasks/{task_id}/complete", path={"task_id": tasks[0]["id"]},
      json={"note": "Done in the admin screen"}, object_id=tasks[0]["id"],
      action="fulfilment_task.complete", object_type="fulfilment_task", change="update",
      shows={"state": "completed"}, was={"state": "open"}, as_person=bob_person)
    c("POST", "/fulfilment/tasks/{task_id}/fail", path={"task_id": tasks[1]["id"]},
      json={"note": "No such cost centre"}, object_id=tasks[1]["id"],
      action="fulfilment_task.fail", object_type="fulfilment_task", change="update",
      shows={"state": "failed"}, was={"state": "open"}, as_person=bob_person)

    # Callers of the service: principals, tokens, explicit service roles -------------------------
    feed = c("POST", "/service-principals", json={"name": "hr-feed", "roles": ["hr-system"]},
             action="service_principal.create", object_type="service_principal",
             change="create", shows={"roles": ["hr-system"]})["id"]
    c("PATCH", "/service-principals/{principal_id}", path={"principal_id": feed},
      json={"description": "Nightly HR push"}, action="service_principal.update",
      object_type="service_principal", change="update", shows={"description": "Nightly HR push"})
    token = c("POST", "/tokens", json={"principal_id": feed, "name": "hr push"},
              action="api_token.create", object_type="api_token", change="create",
              shows={"principal_id": feed})
    secrets.add(token["token"], token["token"].split("_", 2)[-1])
    c("POST", "/tokens/{token_id}/revoke", path={"token_id": token["id"]},
      action="api_token.revoke", object_type="api_token", change="update",
      was={"revoked_at": None})
    grant = c("POST", "/service-role-grants", json={"identity_id": carol, "role": "auditor"},
              action="service_role.grant", object_type="service_role_grant", change="create",
              shows={"identity_id": carol, "role": "auditor"})["id"]
    c("DELETE", "/service-role-grants/{grant_id}", path={"grant_id": grant},
      object_id=grant, action="service_role.revoke", object_type="service_role_grant",
      change="delete", shows={"role": "auditor"})

    # Ending composition links (end-dated, kept as history) ------------------------------------
    c("DELETE", "/roles/{role_id}/included-roles/{child_role_id}",
      path={"role_id": clerk, "child_role_id": base}, params={"reason": "Flattened"},
      action="role.end_inclusion", object_type="role", object_id=clerk, change="update",
      shows={"end_reason": "Flattened"}, was={"valid_until": None})
    c("DELETE", "/roles/{role_id}/entitlements/{entitlement_id}",
      path={"role_id": base, "entitlement_id": payables}, params={"reason": "Moved"},
      action="role.end_entitlement", object_type="role", object_id=base, change="update",
      shows={"end_reason": "Moved"}, was={"valid_until": None})

    # A refused deletion leaves nothing behind --------------------------------------------------
    api.refused("DELETE", "/roles/{role_id}", path={"role_id": clerk}, status=409)

    # Deletions of what was never used --------------------------------------------------------
    c("DELETE", "/groups/{group_id}/members/{identity_id}",
      path={"group_id": resolvers, "identity_id": bob}, object_id=resolvers,
      action="group.member_remove", object_type="group", change="delete",
      shows={"identity_id": bob})
    deletions = [
        ("/accounts/{account_id}", "account_id", account, "account"),
        ("/sod-rules/{rule_id}", "rule_id", draft, "sod_rule"),
        ("/entitlements/{entitlement_id}", "entitlement_id", mistake, "entitlement"),
        ("/roles/{role_id}", "role_id", unused_role, "role"),
        ("/applications/{application_id}", "application_id", spare, "application"),
        ("/groups/{group_id}", "group_id", team, "group"),
        ("/identities/{identity_id}", "identity_id", dave, "identity"),
    ]
    for template, name, object_id, object_type in deletions:
        c("DELETE", template, path={name: object_id}, object_id=object_id,
          action=f"{object_type}.delete", object_type=object_type, change="delete",
          shows={"id": object_id})
    run_hr_scenario(api, secrets, manager=alice, report=(bob, "Bob Baker"), role=base,
                    entitlement=payables)
    run_certification_scenario(api, manager=(alice, "Alice Archer"), report=bob, other=carol,
                               entitlements=[payments, ledger])
    run_siem_scenario(api)
    return secrets
