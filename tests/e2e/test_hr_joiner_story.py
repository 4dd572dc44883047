"""A joiner from an HR system's CSV file: prehire until the local start of the hire date,
birthright roles from rules over HR attributes, accounts on the real slapd and on the
Keycloak and Entra emulators, and day-one access without a password passing through anyone's
hands (Keycloak's own activation email; the manager's one-time link, redeemed by the joiner
to set their directory password and receive an Entra temporary access pass)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import ENTRA_DOMAIN, Story
from tests.e2e.hr_world import (
    csv_bytes,
    everywhere,
    members,
    person_dn,
    worker,
)
from tests.emulators.graph import GraphEmulator
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki
from tests.slapd import Slapd, can_bind, slapd

__all__ = ["slapd"]

LINK = re.compile(r"https?://\S+/day-one/#([A-Za-z0-9_-]{40,})")
PASSWORD = "Harbour lanterns 4 tulips"
# Hired on Monday 19 January 2026 in Los Angeles: 00:00 PST is 08:00 UTC.
HIRE_START = datetime(2026, 1, 19, 8, 0, tzinfo=UTC)


def _link_messages(story: Story) -> list[dict[str, Any]]:
    page = story.call("GET", "/me/notifications", who="maria", params={"limit": 100})
    return [n for n in page["items"] if n["kind"] == "day_one.link"]


def test_a_joiner_from_a_csv_file_gets_accounts_and_day_one_access_everywhere(
        keycloak_story: Story, graph_story: Story, slapd: Slapd, keycloak: KeycloakEmulator,
        keycloak_served: ServedApp, graph: GraphEmulator, graph_served: ServedApp,
        pki: TestPki) -> None:
    # (keycloak_story and graph_story are the same story; they close its connections
    # before the emulators stop)
    story = keycloak_story
    assert graph_story is story
    hr = everywhere(story, slapd, keycloak, keycloak_served, graph, graph_served, pki)

    # An HR export: BOM, CRLF, a quoted cell with a comma, an accented name, an apostrophe.
    row = worker("E-1001", "Zoë", "O'Brien", location="Los Angeles", start="2026-01-19",
                 email="zoe.obrien@example.com", job="FIN-2, senior")
    data = csv_bytes([row])
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    run = hr.upload(data, file_name="workday-2026-01-15.csv")
    assert (run["state"], run["mode"], run["channel"], run["errors"]) == (
        "applied", "snapshot", "upload", [])
    assert run["counts"]["joiners"] == 1 and run["counts"]["rows"] == 1
    assert run["file_name"] == "workday-2026-01-15.csv" and len(run["file_sha256"]) == 64

    zoe = hr.identity("E-1001")
    story.ids["zoe"] = zoe["id"]
    assert {k: zoe[k] for k in ("given_name", "family_name", "display_name", "email",
                                "department", "location", "job_code", "employment_type",
                                "hire_date", "lifecycle_state", "manager_id",
                                "hr_source_id")} == {
        "given_name": "Zoë", "family_name": "O'Brien", "display_name": "Zoë O'Brien",
        "email": "zoe.obrien@example.com", "department": "Finance",
        "location": "Los Angeles", "job_code": "FIN-2, senior", "employment_type": "employee",
        "hire_date": "2026-01-19", "lifecycle_state": "prehire",
        "manager_id": story.ids["maria"], "hr_source_id": hr.source_id}
    # Birthright roles from the rules over her HR attributes, starting on her first day.
    granted = hr.assignments("E-1001", active=None)
    assert sorted((a["role_id"], a["source"], a["valid_from"][:16]) for a in granted) == sorted(
        (hr.roles[r], "birthright", "2026-01-19T08:00") for r in ("r_staff", "r_finance"))

    # Accounts are made before the first day; access and day-one delivery wait for it.
    story.run_engine()
    uid = "zobrien"
    dn = person_dn(uid)
    entry = slapd.entry(dn, ["cn", "sn", "givenName", "mail", "employeeNumber"])
    assert entry is not None
    assert (entry.get("cn"), entry.get("givenName"), entry.get("sn")) == (
        ["Zoë O'Brien"], ["Zoë"], ["O'Brien"])
    assert members(slapd, "staff") == [] and members(slapd, "finance-share") == []
    kc_user = keycloak.user_by_username(uid)
    assert kc_user is not None and kc_user.email == "zoe.obrien@example.com"
    entra_user = graph.user_by_upn(f"{uid}@{ENTRA_DOMAIN}")
    assert entra_user is not None
    assert keycloak.sent_emails == [] and _link_messages(story) == []

    # Prehire until 00:00 in Los Angeles on the hire date.
    story.clock.set(HIRE_START - timedelta(minutes=1))
    hr.process_due()
    story.run_engine()
    assert hr.identity("E-1001")["lifecycle_state"] == "prehire"
    assert members(slapd, "staff") == [] and keycloak.sent_emails == []
    story.clock.set(HIRE_START)
    assert hr.process_due() == 1
    assert hr.identity("E-1001")["lifecycle_state"] == "active"
    stats = story.run_engine()
    assert stats.failed == 0, story.operations("ldap")

    # Access lands on every target.
    assert members(slapd, "staff") == [dn] and members(slapd, "finance-share") == [dn]
    engineering = next(g.id for g in keycloak.realms["idgov"].groups.values()
                       if g.name == "engineering")
    assert keycloak.group_members(engineering) == {uid}
    finance = next(g for g, v in graph.groups.items() if v["displayName"] == "Finance")
    assert graph.members[finance] == [entra_user["id"]]
    # Keycloak sent its own activation email.
    assert [(m["username"], m["email"]) for m in keycloak.sent_emails] == [
        (uid, "zoe.obrien@example.com")]
    assert "UPDATE_PASSWORD" in keycloak.sent_emails[0]["actions"]
    # Maria received one one-time link (the directory and Entra share it).
    messages = _link_messages(story)
    tokens = [m.group(1) for m in (LINK.search(n["body"]) for n in messages) if m]
    assert len(tokens) == 1 and "Zoë O'Brien" in messages[0]["subject"]
    token = tokens[0]

    # The joiner redeems it: a directory password of her own, and a pass for Entra.
    assert not can_bind(slapd, dn, PASSWORD)
    found = story.client.post("/day-one/lookup", json={"token": token})
    assert found.status_code == 200, found.text
    assert sorted((a["name"], a["method"]) for a in found.json()["applications"]) == [
        ("Corporate directory", "set_password"), ("Entra ID", "temporary_access_pass")]
    done = story.client.post("/day-one/redeem", json={"token": token, "password": PASSWORD})
    assert done.status_code == 200, done.text
    outcomes = {a["name"]: a for a in done.json()["applications"]}
    assert outcomes["Corporate directory"]["outcome"] == "password_set"
    assert can_bind(slapd, dn, PASSWORD)
    held = graph.access_passes[entra_user["id"]]
    assert outcomes["Entra ID"]["outcome"] == "pass_issued"
    assert outcomes["Entra ID"]["temporary_access_pass"]["value"] == \
        held["temporaryAccessPass"]
    again = story.client.post("/day-one/redeem", json={"token": token, "password": PASSWORD})
    assert again.status_code == 410

    # Importing the same file again changes nothing.
    assert hr.upload(data)["counts"]["unchanged"] == 1
    assert story.run_engine().claimed == 0
