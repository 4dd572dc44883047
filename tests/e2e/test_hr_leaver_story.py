"""Leavers and rehires. A termination date takes effect at the end of that day where the
worker works (Los Angeles here), not before: then every account is disabled on the real
directory and on the Keycloak and Entra emulators, every assignment ends, and what the
leaver owned and the approval waiting on them pass to their manager; after the retention
period the accounts are deleted. A leaver who comes back keeps their identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import ENTRA_DOMAIN, Story
from tests.e2e.hr_world import (
    DISABLED_OU,
    Hr,
    birthright,
    directory,
    everywhere,
    members,
    people,
    person_dn,
    worker,
)
from tests.emulators.graph import GraphEmulator
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki
from tests.slapd import Slapd, slapd

__all__ = ["slapd"]

# Last day Tuesday 20 January 2026 in Los Angeles: it ends at 00:00 PST on the 21st,
# 08:00 UTC.
END_OF_LAST_DAY = datetime(2026, 1, 21, 8, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)


def test_a_leaver_is_disabled_everywhere_at_the_local_end_of_the_day_and_hands_over(
        keycloak_story: Story, graph_story: Story, slapd: Slapd, keycloak: KeycloakEmulator,
        keycloak_served: ServedApp, graph: GraphEmulator, graph_served: ServedApp,
        pki: TestPki) -> None:
    # (keycloak_story and graph_story are the same story; they close its connections
    # before the emulators stop)
    story = keycloak_story
    assert graph_story is story
    hr = everywhere(story, slapd, keycloak, keycloak_served, graph, graph_served, pki,
                    account_retention_days=30)
    lee = worker("E-4001", "Lee", "Lewis", location="Los Angeles")
    rae = worker("E-4002", "Rae", "Reed", manager="E-4001", kind="contractor",
                 location="Los Angeles")
    hr.upload([rae, lee], mode="delta")  # the manager after the report: any order works
    story.ids["lee"] = hr.identity("E-4001")["id"]
    story.ids["rae"] = hr.identity("E-4002")["id"]
    assert hr.identity("E-4002")["manager_id"] == story.ids["lee"]
    story.run_engine()
    dn = person_dn("llewis")
    assert members(slapd, "staff") == [dn]
    kc_user = keycloak.user_by_username("llewis")
    entra_user = graph.user_by_upn(f"llewis@{ENTRA_DOMAIN}")
    assert kc_user is not None and kc_user.enabled
    assert entra_user is not None and entra_user["accountEnabled"] is True

    # Lee owns a role, and Rae's request waits for Lee's approval.
    owned = story.call("POST", "/roles", 201, json={"name": "Month-end close",
                                                    "owner_id": story.ids["lee"]})
    request = story.ask("rae", "payroll")
    [step] = [s for s in request["lines"][0]["steps"] if s["state"] == "waiting"]

    # HR sends the termination: last day Tuesday 20 January.
    run = hr.upload([{**lee, "End Date": "2026-01-20"}], mode="delta")
    assert (run["state"], run["counts"]["leavers"]) == ("applied", 1)
    assert hr.identity("E-4001")["lifecycle_state"] == "active"

    # 23:30 in Los Angeles on the last day: still active, nothing disabled.
    story.clock.set(END_OF_LAST_DAY - timedelta(minutes=30))
    assert hr.process_due() == 0
    story.run_engine()
    assert hr.identity("E-4001")["lifecycle_state"] == "active"
    assert people(slapd, DISABLED_OU) == [] and kc_user.enabled

    # Midnight there: terminated; the engine disables every account.
    story.clock.set(END_OF_LAST_DAY)
    assert hr.process_due() == 1
    assert hr.identity("E-4001")["lifecycle_state"] == "terminated"
    assert hr.assignments("E-4001") == []
    ended = hr.assignments("E-4001", active=None)
    assert ended and all(a["revoked_at"] is not None for a in ended)
    story.run_engine()
    assert people(slapd, DISABLED_OU) == [person_dn("llewis", DISABLED_OU)]
    assert dn not in people(slapd) and members(slapd, "staff") == []
    user = keycloak.user_by_username("llewis")
    assert user is not None and user.enabled is False
    disabled = graph.user_by_upn(f"llewis@{ENTRA_DOMAIN}")
    assert disabled is not None and disabled["accountEnabled"] is False
    accounts = story.call("GET", "/accounts", params={"identity_id": story.ids["lee"]})
    assert sorted(a["status"] for a in accounts["items"]) == ["disabled"] * 3

    # What Lee owned, and the approval waiting on Lee, are Maria's now.
    assert story.call("GET", f"/roles/{owned['id']}")["owner_id"] == story.ids["maria"]
    story.call("POST", f"/approvals/{step['id']}/decision", who="maria",
               json={"decision": "approve", "comment": "covering for Lee"})
    story.run_engine()
    assert story.states(request["id"])[0] == "fulfilled"
    assert members(slapd, "payroll") == [person_dn("rreed")]

    # The accounts are deleted once the retention period is over.
    story.clock.set(END_OF_LAST_DAY + RETENTION - timedelta(minutes=1))
    assert hr.process_due() == 0
    story.clock.set(END_OF_LAST_DAY + RETENTION)
    assert hr.process_due() == 1
    stats = story.run_engine()
    assert stats.failed == 0
    assert people(slapd, DISABLED_OU) == [] and dn not in people(slapd)
    assert keycloak.user_by_username("llewis") is None
    assert graph.user_by_upn(f"llewis@{ENTRA_DOMAIN}") is None
    accounts = story.call("GET", "/accounts", params={"identity_id": story.ids["lee"]})
    assert sorted(a["status"] for a in accounts["items"]) == ["deleted"] * 3


def _hire_event(employee_id: str, given: str, family: str, when: str) -> dict[str, Any]:
    return {"type": "hire", "employee_id": employee_id, "effective_date": when,
            "worker": {"given_name": given, "family_name": family,
                       "email": f"{given}.{family}@example.com".lower(),
                       "manager_employee_id": "E-MARIA", "department": "Finance",
                       "location": "London", "employment_type": "employee"}}


def test_a_pushed_hire_terminated_for_cause_then_rehired_keeps_the_identity(
        story: Story, slapd: Slapd) -> None:
    hr = Hr(story)
    directory(hr, slapd)
    birthright(hr)
    hr.create_source(kind="json")
    run = hr.push({"events": [_hire_event("E-5001", "Rob", "Rivers", "2026-01-12")]})
    assert (run["state"], run["channel"], run["counts"]["joiners"]) == ("applied", "push", 1)
    rob = hr.identity("E-5001")
    assert rob["lifecycle_state"] == "active"
    story.run_engine()
    dn = person_dn("rrivers")
    assert members(slapd, "staff") == [dn] and members(slapd, "finance-share") == [dn]

    # Terminated for cause, with immediate effect: at once, not at the end of the day.
    run = hr.push({"events": [{"type": "terminate", "employee_id": "E-5001",
                               "effective_date": "2026-01-15", "immediate": True}]})
    assert (run["state"], run["counts"]["leavers"]) == ("applied", 1)
    assert hr.identity("E-5001")["lifecycle_state"] == "terminated"
    story.run_engine()
    assert people(slapd, DISABLED_OU) == [person_dn("rrivers", DISABLED_OU)]
    assert members(slapd, "staff") == []

    # Back on Monday 2 February (a CSV row with a new start date and no end date).
    story.clock.advance(timedelta(days=3))
    identities = hr.counts()["identities"]
    row = worker("E-5001", "Rob", "Rivers", start="2026-02-02",
                 email="rob.rivers@example.com")
    run = hr.upload([row], mode="delta")
    assert (run["counts"]["rehires"], run["counts"]["joiners"]) == (1, 0)
    back = hr.identity("E-5001")
    assert (back["id"], back["lifecycle_state"], back["termination_date"]) == (
        rob["id"], "prehire", None)
    assert hr.counts()["identities"] == identities
    story.run_engine()
    assert people(slapd, DISABLED_OU) == [person_dn("rrivers", DISABLED_OU)]  # not yet

    story.clock.set(datetime(2026, 2, 2, 0, 0, tzinfo=UTC))  # London: GMT in winter
    assert hr.process_due() == 1
    assert hr.identity("E-5001")["lifecycle_state"] == "active"
    assert story.run_engine().failed == 0
    assert people(slapd, DISABLED_OU) == [] and dn in people(slapd)
    assert members(slapd, "staff") == [dn] and members(slapd, "finance-share") == [dn]
    accounts = story.call("GET", "/accounts", params={"identity_id": rob["id"]})
    assert [a["status"] for a in accounts["items"]] == ["active"]
