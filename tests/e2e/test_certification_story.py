"""Access certification end to end over the HTTP API, on the real slapd: a manager campaign
(generation, certify, revoke, bulk, reassign, sign-off), the revocation carried out in the
directory and confirmed by reconciliation, reminders and escalation of a late reviewer with
a clock moved forward, the deadline's auto-action sparing the last administrator, the
evidence export, and a mover's micro-certification.

    Maria Manager ── Jane Smith, Bob Brown         (Finance)
    Dana Director ── Lou Late ── Ray Reed, Otto Owner
    Otto Owner                                     owns the directory; only ldap-admins holder
    Fay Fixer, Finn Fixer                          "Target support" (the fallback group)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.e2e.cert_world import Cert, ldap_members
from tests.e2e.conftest import Story
from tests.e2e.hr_world import Hr, birthright, directory, members, person_dn, worker
from tests.slapd import Slapd, slapd

__all__ = ["slapd"]

DAY = timedelta(days=1)
GROUPS: dict[str, dict[str, Any]] = {
    "payroll": {"risk": "medium"},
    "finance-share": {},
    "reports": {},
    "ldap-admins": {"risk": "high", "privileged": True},
}


def _policy(story: Story, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Q3 manager review of the directory", "kind": "manager",
        "scope": {"application_ids": [story.ids["ldap"]]},
        "deadline_at": (story.clock.now() + 21 * DAY).isoformat(),
        "reminder_days": [14], "escalate_after_days": 10, "deadline_action": "revoke"}
    return body | changes


def test_a_manager_campaign_decides_signs_off_and_the_revocation_leaves_the_directory(
        story: Story, slapd: Slapd) -> None:
    cert = Cert(story)
    cert.person("bob", "Bob", "Brown", manager="maria")
    cert.directory(slapd, GROUPS)
    for who, group in (("jane", "payroll"), ("jane", "finance-share"), ("jane", "reports"),
                       ("bob", "payroll"), ("bob", "reports"), ("bob", "ldap-admins"),
                       ("otto", "ldap-admins")):
        cert.grant(who, group)
    story.run_engine()
    bob, jane = cert.dn("bob"), cert.dn("jane")
    assert ldap_members(slapd, "ldap-admins") == sorted([bob, cert.dn("otto")])

    # The administrator launches a manager review of the Finance people's directory access.
    campaign = cert.campaign(**_policy(story, scope={
        "application_ids": [story.ids["ldap"]], "departments": ["Finance"]}))
    cid = campaign["id"]
    assert (campaign["counts"]["items"], campaign["counts"]["reviewers"],
            campaign["counts"]["privileged"]) == (6, 1, 1)
    mine = cert.items(cid, who="maria")
    assert sorted((i["identity_name"], i["access_name"]) for i in mine) == [
        ("Bob Brown", "Ldap Admins"), ("Bob Brown", "Payroll"), ("Bob Brown", "Reports"),
        ("Jane Smith", "Finance Share"), ("Jane Smith", "Payroll"),
        ("Jane Smith", "Reports")]
    assert {i["reviewer_id"] for i in mine} == {story.ids["maria"]}
    assert cert.items(cid, who="jane") == []  # nobody reviews their own access

    # Maria certifies one, revokes the privileged one (a comment is mandatory) ...
    payroll = cert.item(cid, "jane", "payroll", who="maria")
    cert.decide(payroll["id"], "certify", "maria")
    admins = cert.item(cid, "bob", "ldap-admins", who="maria")
    refused = cert.decide(admins["id"], "revoke", "maria", status=422)
    assert [e["field"] for e in refused["errors"]] == ["comment"], refused
    revoked = cert.decide(admins["id"], "revoke", "maria",
                          comment="Bob no longer administers the directory")
    assert (revoked["decision"], revoked["remediation"]) == ("revoke", "none")

    # ... reassigns Jane's reports to Fay (never to Jane herself) ...
    reports = cert.item(cid, "jane", "reports", who="maria")
    refused = story.call("POST", f"/certification/items/{reports['id']}/reassign", 422,
                         who="maria", json={"to_identity_id": story.ids["jane"]})
    assert [e["field"] for e in refused["errors"]] == ["to_identity_id"], refused
    story.call("POST", f"/certification/items/{reports['id']}/reassign", who="maria",
               json={"to_identity_id": story.ids["fay"], "comment": "Fay runs the reports"})
    assert [n["kind"] for n in cert.notifications("fay")] == ["certification.reassigned"]
    assert [i["id"] for i in cert.items(cid, who="fay")] == [reports["id"]]

    # ... and certifies Bob's other pending access in bulk.
    bulk = story.call("POST", f"/certification/campaigns/{cid}/bulk-decision", who="maria",
                      json={"decision": "certify", "comment": "Still needed",
                            "filter": {"identity_id": story.ids["bob"],
                                       "decision": "pending"}})
    assert bulk == {"decided": 2}
    conflict = cert.sign_off(cid, "maria", status=409)  # Jane's share is still pending
    assert "pending" in conflict["detail"], conflict
    story.clock.advance(timedelta(hours=1))
    cert.decide(cert.item(cid, "jane", "finance-share", who="maria")["id"], "certify", "maria")
    done = cert.sign_off(cid, "maria")
    assert (done["applied"], done["campaign_state"]) == (
        {"certified": 4, "requested": 1, "escalated": 0}, "active")
    cert.decide(reports["id"], "certify", "fay", comment="Needed for the monthly reports")
    assert cert.sign_off(cid, "fay")["campaign_state"] == "closed"
    assert cert.get(cid)["state"] == "closed"
    assert cert.decide(payroll["id"], "revoke", "maria", status=409)  # final now

    # A certify stamps the assignment; the revoke ended Bob's.
    stamped = story.call("GET", f"/assignments/{story.ids['jane/payroll']}")
    assert stamped["last_certified_at"][:19] == story.clock.now().isoformat()[:19]
    assert stamped["last_certified_by"] == "identity:Maria Manager"
    assert story.call("GET", f"/assignments/{story.ids['bob/ldap-admins']}")[
        "revoked_at"] is not None

    # The engine takes Bob out of the group on the real directory.
    assert cert.read_item(admins["id"])["remediation"] == "requested"
    assert bob in ldap_members(slapd, "ldap-admins")
    story.run_engine()
    assert ldap_members(slapd, "ldap-admins") == [cert.dn("otto")]
    assert ldap_members(slapd, "payroll") == sorted([bob, jane])
    assert cert.verify() == 0  # no reconciliation has read the target since
    assert cert.read_item(admins["id"])["remediation"] == "requested"

    # A reconciliation read of the directory confirms the access is gone.
    story.clock.advance(timedelta(minutes=5))
    run = cert.reconcile()
    assert run["state"] == "succeeded", run
    assert cert.verify() == 1
    confirmed = cert.read_item(admins["id"])
    assert confirmed["remediation"] == "confirmed"
    assert confirmed["context"]["remediation"]["runs"] == [run["id"]]
    assert cert.verify() == 0

    # The evidence: every decision with who, when, comment and remediation.
    report = cert.report(cid, "json")
    assert report["campaign"]["state"] == "closed"
    assert [(r["name"], r["items"], r["certified"], r["revoked"]) for r in
            report["reviewers"]] == [("Fay Fixer", 1, 1, 0), ("Maria Manager", 5, 4, 1)]
    rows = {(r["identity_name"], r["access_name"]): r for r in report["items"]}
    assert len(rows) == 6
    bob_admin = rows[("Bob Brown", "Ldap Admins")]
    assert (bob_admin["decision"], bob_admin["decided_by"], bob_admin["comment"],
            bob_admin["remediation"]) == ("revoke", "identity:Maria Manager",
                                          "Bob no longer administers the directory",
                                          "confirmed")
    assert bob_admin["decided_at"] is not None and bob_admin["remediated_at"] is not None
    jane_reports = rows[("Jane Smith", "Reports")]
    assert (jane_reports["decided_by"], jane_reports["reviewer_name"],
            jane_reports["original_reviewer_id"]) == (
        "identity:Fay Fixer", "Fay Fixer", story.ids["maria"])
    table = cert.report(cid, "csv")
    assert sorted((r["employee_id"], r["access_name"], r["decision"], r["decided_by"],
                   r["comment"], r["remediation"]) for r in table) == [
        ("E-BOB", "Ldap Admins", "revoke", "identity:Maria Manager",
         "Bob no longer administers the directory", "confirmed"),
        ("E-BOB", "Payroll", "certify", "identity:Maria Manager", "Still needed", "none"),
        ("E-BOB", "Reports", "certify", "identity:Maria Manager", "Still needed", "none"),
        ("E-JANE", "Finance Share", "certify", "identity:Maria Manager", "", "none"),
        ("E-JANE", "Payroll", "certify", "identity:Maria Manager", "", "none"),
        ("E-JANE", "Reports", "certify", "identity:Fay Fixer", "Needed for the monthly reports",
         "none")]
    assert all(r["decided_at"] for r in table)


def test_a_late_reviewer_is_reminded_escalated_and_the_deadline_spares_the_last_admin(
        story: Story, slapd: Slapd) -> None:
    cert = Cert(story)
    cert.person("dana", "Dana", "Director", department="Operations")
    cert.person("lou", "Lou", "Late", manager="dana", department="Operations")
    cert.person("ray", "Ray", "Reed", manager="lou", department="Operations")
    story.call("PATCH", f"/identities/{story.ids['otto']}", json={"manager_id": story.ids["lou"]})
    cert.directory(slapd, GROUPS)
    for who, group in (("jane", "payroll"), ("ray", "payroll"), ("ray", "reports"),
                       ("otto", "ldap-admins")):
        cert.grant(who, group)
    story.run_engine()
    ray, otto = cert.dn("ray"), cert.dn("otto")

    campaign = cert.campaign(**_policy(story, fallback_group_id=story.ids["support"]))
    cid = campaign["id"]
    assert sorted(i["access_name"] for i in cert.items(cid, who="lou")) == [
        "Ldap Admins", "Payroll", "Reports"]

    # Maria decides and signs off on the second day; Lou does nothing.
    story.clock.advance(DAY)
    cert.decide(cert.item(cid, "jane", "payroll", who="maria")["id"], "certify", "maria")
    cert.sign_off(cid, "maria")
    assert cert.run_deadlines() == 0  # nothing due yet

    # A week before ... (14 days before the deadline): one reminder, to the late reviewer.
    story.clock.advance(6 * DAY)
    assert cert.run_deadlines() == 1
    story.clock.advance(timedelta(hours=2))
    assert cert.run_deadlines() == 0  # once per threshold
    reminders = cert.notifications("lou", "certification.reminder")
    assert len(reminders) == 1 and "(3 assigned to you)" in reminders[0]["body"], reminders
    assert cert.notifications("maria", "certification.reminder") == []

    # Ten days after the start Lou's pending items move to Dana, Lou's manager.
    story.clock.advance(3 * DAY)
    assert cert.run_deadlines() == 3 + 1  # three items moved; Dana reminded for the 14 days
    assert cert.items(cid, who="lou") == []
    moved = cert.items(cid, who="dana")
    assert sorted(i["access_name"] for i in moved) == ["Ldap Admins", "Payroll", "Reports"]
    assert {i["original_reviewer_id"] for i in moved} == {story.ids["lou"]}
    # (both at the same instant: the order of the inbox between them is not defined)
    assert sorted(n["kind"] for n in cert.notifications("dana")) == [
        "certification.escalation", "certification.reminder"]
    assert len(cert.notifications("lou", "certification.escalation")) == 1
    assert len(cert.notifications("lou", "certification.reminder")) == 1
    story.clock.advance(DAY)
    assert cert.run_deadlines() == 0  # an item moves once

    # At the deadline the undecided items are revoked, except Otto's ldap-admins: he owns
    # the directory and is its only administrator, so that one is escalated.
    story.clock.advance(11 * DAY)
    assert cert.run_deadlines() == 1
    assert cert.get(cid)["state"] == "closed"
    rows = {(r["identity_name"], r["access_name"]): r
            for r in cert.report(cid, "json")["items"]}
    assert {k: (r["decision"], r["remediation"]) for k, r in rows.items()} == {
        ("Jane Smith", "Payroll"): ("certify", "none"),
        ("Ray Reed", "Payroll"): ("revoke", "requested"),
        ("Ray Reed", "Reports"): ("revoke", "requested"),
        ("Otto Owner", "Ldap Admins"): ("revoke", "escalated")}
    spared = rows[("Otto Owner", "Ldap Admins")]
    assert (spared["decided_by"], spared["comment"]) == (
        "system:periodic-jobs",
        "revoked automatically: undecided when the campaign closed (deadline)")
    assert "owner of Corporate directory" in spared["remediation_detail"]["reason"], spared
    assert story.call("GET", f"/assignments/{story.ids['otto/ldap-admins']}")[
        "revoked_at"] is None
    for key in ("ray/payroll", "ray/reports"):
        assert story.call("GET", f"/assignments/{story.ids[key]}")["revoked_at"] is not None
    assert [n["kind"] for n in cert.notifications("fay", "certification.escalated")] == [
        "certification.escalated"]

    story.run_engine()
    assert ldap_members(slapd, "payroll") == [cert.dn("jane")]
    assert ldap_members(slapd, "reports") == []
    assert ldap_members(slapd, "ldap-admins") == [otto]
    assert ray not in ldap_members(slapd, "payroll")
    story.clock.advance(timedelta(minutes=5))
    assert cert.reconcile()["state"] == "succeeded"
    assert cert.verify() == 2
    assert {r["access_name"]: r["remediation"] for r in cert.report(cid, "csv")
            if r["employee_id"] == "E-RAY"} == {"Payroll": "confirmed", "Reports": "confirmed"}


def test_a_mover_s_requested_access_goes_to_the_new_manager_in_a_micro_campaign(
        story: Story, slapd: Slapd) -> None:
    hr = Hr(story)
    directory(hr, slapd)
    birthright(hr)
    hr.create_source(mover_grace_days=7)
    cert = Cert(story)
    amy = worker("E-2001", "Amy", "Adams")
    hr.upload([amy], mode="delta")
    story.ids["amy"] = hr.identity("E-2001")["id"]
    request = story.approve(story.ask("amy", "payroll"))
    story.run_engine()
    assert story.states(request["id"])[0] == "fulfilled"
    dn = person_dn("aadams")
    assert members(slapd, "payroll") == [dn]

    # Amy moves to Sales under Otto: her requested payroll access is flagged for Otto.
    moved = hr.upload([{**amy, "Department": "Sales", "Manager ID": "E-OTTO"}], mode="delta")
    assert moved["counts"]["movers"] == 1
    payroll = story.assignment_of("amy", "payroll")
    [flag] = story.call("GET", "/review-flags", who="otto")["items"]
    assert (flag["assignment_id"], flag["state"]) == (payroll, "open")

    # The micro-certification job opens a campaign for Otto (once).
    assert cert.open_micro() == 1
    assert cert.open_micro() == 0
    [campaign] = story.call("GET", "/certification/campaigns", who="otto",
                            params={"kind": "micro"})["items"]
    assert (campaign["state"], campaign["trigger"]) == ("active", "mover")
    assert story.call("GET", "/certification/campaigns", who="maria",
                      params={"kind": "micro"})["items"] == []
    assert [n["kind"] for n in cert.notifications("otto", "certification.micro")] == [
        "certification.micro"]
    [item] = cert.items(campaign["id"], who="otto")
    assert (item["assignment_id"], item["identity_name"], item["access_name"]) == (
        payroll, "Amy Adams", "Payroll")

    # Otto revokes it and signs off: the flag closes, the assignment ends, the group empties.
    cert.decide(item["id"], "revoke", "otto", comment="Not needed in Sales")
    done = cert.sign_off(campaign["id"], "otto")
    assert (done["applied"]["requested"], done["campaign_state"]) == (1, "closed")
    closed = story.call("GET", f"/review-flags/{flag['id']}")
    assert closed["state"] == "revoked", closed
    assert story.call("GET", "/review-flags", who="otto")["items"] == []
    assert story.call("GET", f"/assignments/{payroll}")["revoked_at"] is not None
    story.run_engine()
    assert members(slapd, "payroll") == []
    assert ldap_members(slapd, "payroll") == []
    story.clock.advance(timedelta(minutes=5))
    assert cert.reconcile()["state"] == "succeeded"
    assert cert.verify() == 1
    assert cert.read_item(item["id"])["remediation"] == "confirmed"
    assert cert.open_micro() == 0  # the closed flag opens nothing
