"""An approved request lands in a real OpenLDAP directory, and comes back out; a directory
that is down for a while delays the work, which then completes once and only once. What is
in the directory is read with the real ``ldapsearch``, not with the connector."""

from __future__ import annotations

from datetime import timedelta

from tests.e2e.conftest import Story, ldap_settings
from tests.slapd import Slapd, slapd

__all__ = ["slapd"]

PEOPLE_OU = "ou=people,dc=example,dc=com"
GROUPS_OU = "ou=groups,dc=example,dc=com"
JANE = f"uid=jsmith,{PEOPLE_OU}"
PAYROLL = f"cn=payroll,{GROUPS_OU}"
SHARE = f"cn=finance-share,{GROUPS_OU}"


def _directory(story: Story, server: Slapd) -> None:
    """The administrator registers the directory and two of its groups."""
    server.add_group("payroll")
    server.add_group("finance-share")
    story.application("ldap", "Corporate directory", "ldap", ldap_settings(server),
                      {"bind_password": server.rootpw})
    story.entitlement("payroll", "ldap", "Payroll", PAYROLL)
    story.entitlement("share", "ldap", "Finance share", SHARE)


def _members(server: Slapd, group_dn: str) -> list[str]:
    """The members of a group, without the group itself (the placeholder member of an
    otherwise empty groupOfNames)."""
    found = server.ldapsearch(group_dn, attrs=["member"], scope="base")
    assert len(found) == 1, found
    return sorted(m for m in found[0].get("member") if m.lower() != group_dn.lower())


def _people(server: Slapd) -> list[str]:
    return sorted(e.dn for e in server.ldapsearch(server.suffix, "(objectClass=inetOrgPerson)"))


def test_an_approved_request_lands_in_ldap_and_revocation_removes_it(
        story: Story, slapd: Slapd) -> None:
    _directory(story, slapd)

    request = story.ask("jane", "payroll", "share")
    assert story.states(request["id"]) == ("pending_approval",
                                          ["pending_approval", "pending_approval"])
    assert _people(slapd) == []  # nothing happens before the approval

    request = story.approve(request)
    assert story.states(request["id"]) == ("provisioning", ["provisioning", "provisioning"])
    stats = story.run_engine()
    assert (stats.succeeded, stats.failed, stats.retry_scheduled) == (3, 0, 0)

    # The entry, named by the default mapping, with the attributes of the identity.
    entry = slapd.entry(JANE, ["*", "memberOf"])
    assert entry is not None
    assert {name: entry.get(name) for name in (
        "uid", "cn", "sn", "givenName", "mail", "departmentNumber", "employeeNumber")} == {
        "uid": ["jsmith"], "cn": ["Jane Smith"], "sn": ["Smith"], "givenName": ["Jane"],
        "mail": ["jane.smith@example.com"], "departmentNumber": ["Finance"],
        "employeeNumber": ["E-JANE"]}
    assert sorted(entry.get("memberOf")) == [SHARE, PAYROLL]
    assert _members(slapd, PAYROLL) == [JANE]
    assert _members(slapd, SHARE) == [JANE]
    assert _people(slapd) == [JANE]
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])
    assert story.summary("ldap") == [("create_account", "-", "succeeded"),
                                     ("grant", "payroll", "succeeded"),
                                     ("grant", "share", "succeeded")]
    accounts = story.call("GET", "/accounts", params={"identity_id": story.ids["jane"]})
    assert [(a["native_id"], a["username"], a["status"]) for a in accounts["items"]] == [
        (JANE, "jsmith", "active")]

    # An administrator takes both groups away.
    story.revoke("jane", "payroll")
    story.revoke("jane", "share")
    assert _members(slapd, PAYROLL) == [JANE]  # recorded, not yet carried out
    story.run_engine()
    assert _members(slapd, PAYROLL) == []
    assert _members(slapd, SHARE) == []
    entry = slapd.entry(JANE, ["memberOf"])
    assert entry is not None and entry.get("memberOf") == []
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])
    assert story.summary("ldap") == [("create_account", "-", "succeeded"),
                                     ("grant", "payroll", "succeeded"),
                                     ("grant", "share", "succeeded"),
                                     ("revoke", "payroll", "succeeded"),
                                     ("revoke", "share", "succeeded")]
    assert story.run_engine().claimed == 0


def test_a_revocation_asked_by_the_person_is_fulfilled_once_ldap_has_removed_it(
        story: Story, slapd: Slapd) -> None:
    _directory(story, slapd)
    grant = story.approve(story.ask("jane", "payroll", "share"))
    story.run_engine()
    assert story.states(grant["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])

    # Jane gives the payroll group back herself: a revocation needs no approval.
    back = story.ask("jane", "payroll", action="revoke")
    assert _members(slapd, PAYROLL) == [JANE]
    revoke_ops = story.call("GET", "/provisioning/operations",
                            params={"request_line_id": back["lines"][0]["id"]})["items"]
    assert [(o["action"], o["state"]) for o in revoke_ops] == [("revoke", "pending")]
    assert story.states(back["id"]) == ("provisioning", ["provisioning"])

    story.run_engine()
    assert _members(slapd, PAYROLL) == []
    assert _members(slapd, SHARE) == [JANE]
    assert story.states(back["id"]) == ("fulfilled", ["fulfilled"])
    assert story.states(grant["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])


def test_a_directory_down_for_a_while_delays_the_work_which_then_completes_once(
        story: Story, slapd: Slapd) -> None:
    _directory(story, slapd)
    # The directory works at first: Maria's account lands (the engine's pool is connected).
    story.call("POST", "/assignments", 201, json={
        "identity_id": story.ids["maria"], "entitlement_id": story.ids["share"],
        "reason": "Team lead"})
    story.run_engine()
    assert _members(slapd, SHARE) == [f"uid=mmanager,{PEOPLE_OU}"]

    slapd.stop()
    request = story.approve(story.ask("jane", "payroll", "share"))
    assert story.states(request["id"]) == ("provisioning", ["provisioning", "provisioning"])

    # Down: each run tries, fails transiently, and schedules a retry; nothing fails.
    for _ in range(6):
        stats = story.run_engine()
        assert stats.failed == 0
        story.clock.advance(timedelta(hours=1))
    health = story.health("ldap")
    breaker = health["breaker"]
    assert (breaker["state"], breaker["consecutive_failures"],
            breaker["last_error_category"]) == ("open", 6, "system_unavailable")
    assert "Connection refused" in breaker["last_error"]
    assert (health["connection"]["ok"], health["connection"]["error_category"]) == (
        False, "system_unavailable")
    assert (health["waiting_operations"], health["failed_operations"]) == (3, 0)
    waiting = [o for o in story.operations("ldap") if o["identity_id"] == story.ids["jane"]]
    assert sorted((o["action"], o["state"]) for o in waiting) == [
        ("create_account", "retry_scheduled"), ("grant", "pending"), ("grant", "pending")]
    for op in waiting:
        assert op["waiting_reason"].startswith(
            "waiting: the target is unreachable (circuit breaker open since "), op
        assert (op["last_error"] is None) == (op["action"] == "grant")  # never tried
    assert story.states(request["id"]) == ("provisioning", ["provisioning", "provisioning"])

    # Back up; once the cool-down and the backoff are over the work completes.
    slapd.start()
    story.clock.advance(timedelta(hours=2))
    stats = story.run_engine()
    assert stats.failed == 0
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])
    health = story.health("ldap")
    assert (health["breaker"]["state"], health["connection"]["ok"]) == ("closed", True)
    assert (health["waiting_operations"], health["failed_operations"]) == (0, 0)

    # Exactly one entry for Jane, and one membership in each group.
    assert [e.dn for e in slapd.ldapsearch(PEOPLE_OU, "(uid=jsmith*)")] == [JANE]
    assert _people(slapd) == [JANE, f"uid=mmanager,{PEOPLE_OU}"]
    assert _members(slapd, PAYROLL) == [JANE]
    assert _members(slapd, SHARE) == [JANE, f"uid=mmanager,{PEOPLE_OU}"]
    assert story.run_engine().claimed == 0


def test_a_directory_stopping_in_the_middle_of_a_request_loses_and_repeats_nothing(
        story: Story, slapd: Slapd) -> None:
    _directory(story, slapd)
    request = story.approve(story.ask("jane", "payroll", "share"))

    def stop_after_the_account(_operation_id: object, state: str) -> None:
        if state == "succeeded":
            slapd.stop()

    stats = story.run_engine(on_executed=stop_after_the_account)
    assert (stats.succeeded, stats.failed) == (1, 0)
    assert story.summary("ldap") == [("create_account", "-", "succeeded"),
                                     ("grant", "payroll", "retry_scheduled"),
                                     ("grant", "share", "pending")]  # behind payroll
    assert story.states(request["id"]) == ("provisioning", ["provisioning", "provisioning"])

    slapd.start()
    story.clock.advance(timedelta(hours=1))
    story.run_engine()
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])
    assert _people(slapd) == [JANE]
    assert _members(slapd, PAYROLL) == [JANE]
    assert _members(slapd, SHARE) == [JANE]
