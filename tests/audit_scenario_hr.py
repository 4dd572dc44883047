"""The audit scenario's HR part: birthright rules, HR sources and feed runs (upload, push,
held runs confirmed and rejected), review flags, SCIM users and groups, day-one links.

Called by :func:`tests.audit_scenario.run_scenario` with people and catalog items it made.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from idgov.assignments.service import grant
from idgov.dayone.service import record_day_one
from idgov.db.session import unit_of_work
from idgov.lifecycle.review_flags import flag_requested_access
from idgov.models.application import Application
from idgov.provisioning.accounts import ensure_account_operations
from idgov.provisioning.engine import run_until_idle
from idgov.types import Actor

if TYPE_CHECKING:
    from tests.audit_scenario import AuditedApi, Secrets

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LINK = re.compile(r"/day-one/#([A-Za-z0-9_-]{40,})")

CSV = ("Employee Number,First Name,Last Name,Email,Department\r\n"
       "W1,Zoë,O'Brien,zoe.obrien@example.com,Ops\r\n"
       "W2,José María,Núñez,jose.nunez@example.com,Ops\r\n"
       "W3,Ada,Quinn,ada.quinn@example.com,Ops\r\n")
TRUNCATED = CSV.split("W2")[0]  # only W1: two of three would leave


def _birthright(api: AuditedApi, *, role: str, entitlement: str) -> str:
    c = api.call
    rule = c("POST", "/birthright-rules",
             json={"name": "Finance base", "role_id": role,
                   "condition": {"attribute": "department", "op": "eq", "value": "Nowhere"}},
             action="birthright_rule.create", object_type="birthright_rule",
             change="create")["id"]
    draft = c("POST", "/birthright-rules",
              json={"name": "Draft birthright", "condition": {"all": []},
                    "entitlement_id": entitlement, "enabled": False},
              action="birthright_rule.create", object_type="birthright_rule",
              change="create")["id"]
    c("PATCH", "/birthright-rules/{rule_id}", path={"rule_id": rule},
      json={"description": "Base access"}, action="birthright_rule.update",
      object_type="birthright_rule", change="update", shows={"description": "Base access"},
      was={"description": None})
    api.read_only("POST", "/birthright-rules/preview", path={},
                  json={"condition": {"attribute": "department", "op": "eq",
                                      "value": "Finance"}})
    return str(draft)


def _feeds(api: AuditedApi) -> tuple[str, str]:
    c = api.call
    source = c("POST", "/hr/sources",
               json={"name": "Workday", "column_mapping": {
                   "employee_id": "Employee Number", "given_name": "First Name",
                   "family_name": "Last Name", "email": "Email", "department": "Department"},
                   "location_time_zones": {"Paris": "Europe/Paris"}},
               action="hr_source.create", object_type="hr_source", change="create",
               shows={"name": "Workday"})["id"]
    spare = c("POST", "/hr/sources",
              json={"name": "Spare HR", "column_mapping": {
                  "employee_id": "id", "given_name": "first", "family_name": "last"}},
              action="hr_source.create", object_type="hr_source", change="create")["id"]
    c("PATCH", "/hr/sources/{source_id}", path={"source_id": source},
      json={"termination_threshold_percent": 10}, action="hr_source.update",
      object_type="hr_source", change="update", shows={"termination_threshold_percent": 10},
      was={"termination_threshold_percent": 5})
    at = {"source_id": source}
    c("POST", "/hr/sources/{source_id}/upload", path=at, content=CSV.encode(),
      action="hr_feed.applied", object_type="hr_feed_run", change="create",
      shows={"state": "applied", "counts": {"rows": 3, "joiners": 3, "movers": 0,
                                            "leavers": 0, "rehires": 0, "conversions": 0,
                                            "updates": 0, "unchanged": 0, "rejected": 0}})
    c("POST", "/hr/sources/{source_id}/push", path=at,
      json={"events": [{"type": "update", "employee_id": "W1",
                        "effective_date": api.clock.now().date().isoformat(),
                        "worker": {"department": "Finance"}}]},
      action="hr_feed.applied", object_type="hr_feed_run", change="create",
      shows={"mode": "delta"})
    for decision, action in (("reject", "hr_feed.rejected"), ("confirm", "hr_feed.applied")):
        held = c("POST", "/hr/sources/{source_id}/upload", path=at,
                 content=TRUNCATED.encode(), action="hr_feed.held",
                 object_type="hr_feed_run", change="create", shows={"state": "held"})["id"]
        c("POST", f"/hr/runs/{{run_id}}/{decision}", path={"run_id": held},
          json={"note": "checked the diff"}, action=action, object_type="hr_feed_run",
          change="update", was={"state": "held"})
    api.refused("DELETE", "/hr/sources/{source_id}", path={"source_id": source}, status=409)
    return str(source), str(spare)


def _review_flag(api: AuditedApi, report: str, entitlement: str) -> None:
    with unit_of_work(api.factory) as session:
        grant(session, identity_id=uuid.UUID(report), entitlement_id=uuid.UUID(entitlement),
              source="request", reason="asked for the old position", valid_from=None,
              valid_until=None, actor=Actor.system("requests"), clock=api.clock)
        flags = flag_requested_access(session, identity_id=uuid.UUID(report), reviewer_id=None,
                                      change_id=None, reason="moved to another department",
                                      actor=Actor.system("hr-feed"), clock=api.clock)
        assert flags, "the report holds requested access"
        flag = str(flags[0].id)
    api.new_events()  # the flag itself comes from a feed, not from a route
    api.call("POST", "/review-flags/{flag_id}/decision", path={"flag_id": flag},
             object_id=flag, json={"decision": "kept", "comment": "still needed"},
             action="review_flag.keep", object_type="review_flag", change="update",
             shows={"state": "kept"}, was={"state": "open"})


def _scim(api: AuditedApi) -> None:
    c = api.call
    user_body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE], "userName": "scim.user", "externalId": "x1",
        "name": {"givenName": "Sc", "familyName": "Im"},
        "emails": [{"value": "scim.user@example.com", "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": "SCIM-1", "department": "Ops"}}
    user = c("POST", "/scim/v2/Users", json=user_body, action="identity.create",
             object_type="identity", change="create", shows={"employee_id": "SCIM-1"})["id"]
    api.read_only("POST", "/scim/v2/Users/.search", path={},
                  json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": 'userName eq "scim.user"'})
    at = {"user_id": user}
    c("PATCH", "/scim/v2/Users/{user_id}", path=at, object_id=user,
      json={"schemas": [PATCH_OP], "Operations": [
          {"op": "Replace", "path": "title", "value": "Analyst"}]},
      action="identity.update", object_type="identity", change="update",
      shows={"job_title": "Analyst"}, was={"job_title": None})
    c("PUT", "/scim/v2/Users/{user_id}", path=at, object_id=user,
      json=user_body | {"displayName": "S I", "title": "Analyst"}, action="identity.update",
      object_type="identity", change="update", shows={"display_name": "S I"})
    group = c("POST", "/scim/v2/Groups",
              json={"schemas": [GROUP], "displayName": "Scim Team",
                    "members": [{"value": user}]},
              action="group.create", object_type="group", change="create",
              shows={"kind": "organisation"})["id"]
    api.read_only("POST", "/scim/v2/Groups/.search", path={},
                  json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": 'displayName eq "Scim Team"'})
    c("PATCH", "/scim/v2/Groups/{group_id}", path={"group_id": group}, object_id=group,
      json={"schemas": [PATCH_OP], "Operations": [
          {"op": "remove", "path": f'members[value eq "{user}"]'}]},
      action="group.member_remove", object_type="group", change="delete",
      shows={"identity_id": user})
    c("PUT", "/scim/v2/Groups/{group_id}", path={"group_id": group}, object_id=group,
      json={"schemas": [GROUP], "displayName": "Scim Team 2"}, action="group.update",
      object_type="group", change="update", shows={"name": "Scim Team 2"})
    c("DELETE", "/scim/v2/Groups/{group_id}", path={"group_id": group}, object_id=group,
      action="group.delete", object_type="group", change="delete",
      shows={"name": "Scim Team 2"})
    c("DELETE", "/scim/v2/Users/{user_id}", path=at, object_id=user,
      action="scim.user_delete", object_type="identity", change="update")


def _day_one(api: AuditedApi, secrets: Secrets, *, manager: str,
             report: tuple[str, str]) -> None:
    actor = Actor.system("hr-feed")
    with unit_of_work(api.factory) as session:
        target = Application(name="Day-one target", connector_kind="memory",
                             settings={"target": "audit-scenario-day-one"})
        session.add(target)
        session.flush()
        ensure_account_operations(session, identity_id=uuid.UUID(report[0]),
                                  application_id=target.id, cause="lifecycle",
                                  cause_id="joiner:scenario", actor=actor, clock=api.clock)
        record_day_one(session, identity_id=uuid.UUID(report[0]), application_ids=[target.id],
                       not_before=None, cause_id="joiner:scenario", actor=actor,
                       clock=api.clock)
    run_until_idle(api.factory, settings=None, clock=api.clock)
    api.new_events()  # the engine's own events are checked with it
    inbox = api.client.get("/me/notifications", params={"limit": 100},
                           headers={"Authorization": f"Bearer person:{manager}"}).json()
    found = [(n["object_id"], LINK.search(n["body"])) for n in inbox["items"]
             if n["kind"] == "day_one.link"]
    assert len(found) == 1 and found[0][1] is not None, inbox
    link_id, match = found[0]
    assert match is not None
    token, password = match.group(1), f"Tulip harbour {uuid.uuid4().hex[:6]} lanterns"
    secrets.add(token, password)
    api.read_only("POST", "/day-one/lookup", path={}, json={"token": token})
    api.call("POST", "/day-one/redeem", json={"token": token, "password": password},
             object_id=link_id, action="day_one_link.redeem", object_type="day_one_link",
             change="update", shows={"state": "redeemed"}, as_person=report)


def run_hr_scenario(api: AuditedApi, secrets: Secrets, *, manager: str,
                    report: tuple[str, str], role: str, entitlement: str) -> None:
    """Every mutating HR route once; ``report`` is (id, name) of ``manager``'s report, who
    holds requested access."""
    draft_rule = _birthright(api, role=role, entitlement=entitlement)
    source, spare = _feeds(api)
    del source
    _review_flag(api, report[0], entitlement)
    _scim(api)
    _day_one(api, secrets, manager=manager, report=report)
    for template, name, object_id, object_type in (
            ("/birthright-rules/{rule_id}", "rule_id", draft_rule, "birthright_rule"),
            ("/hr/sources/{source_id}", "source_id", spare, "hr_source")):
        api.call("DELETE", template, path={name: object_id}, object_id=object_id,
                 action=f"{object_type}.delete", object_type=object_type, change="delete")
