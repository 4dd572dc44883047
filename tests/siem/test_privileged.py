"""Events that grant privileged access are marked, through roles as composed at the time."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.assignments import service as assignments
from idgov.audit.service import record
from idgov.auth import service as auth_service
from idgov.auth.schemas import GrantCreate
from idgov.catalog import composition
from idgov.catalog.schemas import InclusionCreate, RoleEntitlementCreate
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models import Application, Entitlement, Role
from idgov.types import Actor
from tests.catalog.factories import new_identity
from tests.conftest import make_token

ADMIN = Actor.system("siem-tests")
WATCHED = ("assignment.grant", "assignment.revoke", "role.add_entitlement",
           "role.include_role", "role.end_entitlement", "provisioning.complete",
           "service_role.grant", "api_token.create")


def _build(factory: sessionmaker[Session], clock: FixedClock) -> dict[str, uuid.UUID]:
    with unit_of_work(factory) as session:
        people = {name: new_identity(session, name).id for name in ("alice", "bob", "carol",
                                                                     "dave")}
        app = Application(name="Cloud", connector_kind="ldap", settings={})
        session.add(app)
        session.flush()
        prod = Entitlement(application_id=app.id, native_id="cn=prod-admin",
                           name="prod-admin", privileged=True, risk="critical")
        vpn = Entitlement(application_id=app.id, native_id="cn=vpn", name="vpn")
        roles = {name: Role(name=name) for name in ("platform", "ops", "staff")}
        session.add_all([prod, vpn, *roles.values()])
        session.flush()
        return {**people, "prod-admin": prod.id, "vpn": vpn.id,
                **{name: role.id for name, role in roles.items()}}


def test_grants_of_privileged_access_are_marked(
        client: TestClient, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ids = _build(session_factory, clock)
    names = {str(v): k for k, v in ids.items()}
    with unit_of_work(session_factory) as s:
        composition.add_entitlement(s, role_id=ids["staff"], link_in=RoleEntitlementCreate(
            entitlement_id=ids["vpn"]), actor=ADMIN, clock=clock)
        composition.add_entitlement(s, role_id=ids["ops"], link_in=RoleEntitlementCreate(
            entitlement_id=ids["prod-admin"]), actor=ADMIN, clock=clock)
        composition.include_role(s, role_id=ids["platform"],
                                 inclusion_in=InclusionCreate(role_id=ids["ops"]),
                                 actor=ADMIN, clock=clock)
        composition.include_role(s, role_id=ids["staff"],
                                 inclusion_in=InclusionCreate(role_id=ids["ops"]),
                                 actor=ADMIN, clock=clock)  # staff now reaches prod-admin

    def grant(who: str, what: str) -> uuid.UUID:
        kind = "role_id" if what in ("platform", "ops", "staff") else "entitlement_id"
        with unit_of_work(session_factory) as s:
            args: dict[str, Any] = {kind: ids[what]}
            return assignments.grant(s, identity_id=ids[who], source="admin", reason="test",
                                     valid_from=None, valid_until=None, actor=ADMIN,
                                     clock=clock, **args).id

    alice_prod = grant("alice", "prod-admin")
    grant("alice", "vpn")
    grant("bob", "platform")
    grant("dave", "staff")
    clock.advance(timedelta(hours=1))
    with unit_of_work(session_factory) as s:
        composition.end_inclusion(s, role_id=ids["staff"], child_role_id=ids["ops"],
                                  reason="too broad", actor=ADMIN, clock=clock)
        composition.end_entitlement(s, role_id=ids["ops"], entitlement_id=ids["prod-admin"],
                                    reason="moved", actor=ADMIN, clock=clock)
    clock.advance(timedelta(hours=1))
    grant("carol", "platform")  # platform no longer reaches prod-admin
    grant("bob", "staff")
    with unit_of_work(session_factory) as s:
        assignments.revoke(s, assignment_id=alice_prod, reason="left the team", actor=ADMIN,
                           clock=clock)
        for action, state, entitlement in (("grant", "succeeded", "prod-admin"),
                                           ("grant", "failed", "prod-admin"),
                                           ("revoke", "succeeded", "prod-admin"),
                                           ("grant", "succeeded", "vpn")):
            record(s, actor=ADMIN, action="provisioning.complete",
                   object_type="provisioning_operation",
                   object_id=f"{action}-{state}-{entitlement}", clock=clock,
                   after={"action": action, "state": state,
                          "entitlement_id": ids[entitlement]})
        for role in ("administrator", "auditor"):
            auth_service.grant_role(s, grant_in=GrantCreate(identity_id=ids["dave"], role=role),
                                    actor=ADMIN, clock=clock)
    admin = make_token(session_factory, clock, "siem-admin", ["administrator"])
    auditor = make_token(session_factory, clock, "siem-auditor", ["auditor"])

    resp = client.get("/siem/events", params={"limit": 5000},
                      headers={"Authorization": f"Bearer {auditor}"})
    assert resp.status_code == 200, resp.text
    events = [json.loads(line) for line in resp.text.splitlines()]

    def label(event: dict[str, Any]) -> str:
        after = event["after"] or {}
        if event["action"] in ("assignment.grant", "assignment.revoke"):
            target = after.get("role_id") or after.get("entitlement_id")
            who = names[after["identity_id"]] if "identity_id" in after else "?"
            return f"{who}:{names[target]}" if target else event["object"]["id"]
        if event["action"].startswith("role."):
            child = after.get("entitlement_id") or after.get("child_role_id")
            if child is None:  # an ended link: its before names the child
                before = event["before"] or {}
                child = before.get("entitlement_id") or before.get("child_role_id")
            return f"{names[event['object']['id']]}>{names[str(child)]}"
        if event["action"] == "service_role.grant":
            return after["role"]
        if event["action"] == "api_token.create":
            return after["name"]
        return event["object"]["id"]

    watched = [(e["action"], label(e), e["privileged"]) for e in events
               if e["action"] in WATCHED]
    assert watched == EXPECTED
    assert [e["action"] for e in events if e["privileged"]
            and e["action"] not in WATCHED] == []
    assert admin  # the administrator's token exists only for its audit event


EXPECTED = [
    ("role.add_entitlement", "staff>vpn", False),
    ("role.add_entitlement", "ops>prod-admin", True),
    ("role.include_role", "platform>ops", True),
    ("role.include_role", "staff>ops", True),
    ("assignment.grant", "alice:prod-admin", True),
    ("assignment.grant", "alice:vpn", False),
    ("assignment.grant", "bob:platform", True),
    ("assignment.grant", "dave:staff", True),
    ("role.end_entitlement", "ops>prod-admin", False),
    ("assignment.grant", "carol:platform", False),
    ("assignment.grant", "bob:staff", False),
    ("assignment.revoke", "alice:prod-admin", False),
    ("provisioning.complete", "grant-succeeded-prod-admin", True),
    ("provisioning.complete", "grant-failed-prod-admin", False),
    ("provisioning.complete", "revoke-succeeded-prod-admin", False),
    ("provisioning.complete", "grant-succeeded-vpn", False),
    ("service_role.grant", "administrator", True),
    ("service_role.grant", "auditor", False),
    ("api_token.create", "siem-admin", True),
    ("api_token.create", "siem-auditor", False),
]
