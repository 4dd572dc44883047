"""Movers and conversions from delta files: the new position's birthright roles at once,
the old ones kept for the source's grace period and then taken out of the real directory;
access the mover had requested flagged for the new manager; a contractor who becomes an
employee keeps the same identity."""

from __future__ import annotations

from datetime import timedelta

from tests.e2e.conftest import Story
from tests.e2e.hr_world import (
    Hr,
    birthright,
    directory,
    members,
    person_dn,
    worker,
)
from tests.slapd import Slapd, slapd

__all__ = ["slapd"]

GRACE = timedelta(days=7)


def _world(story: Story, server: Slapd) -> Hr:
    hr = Hr(story)
    directory(hr, server)
    birthright(hr)
    hr.create_source(mover_grace_days=7)
    return hr


def test_a_mover_gets_the_new_role_now_and_loses_the_old_one_after_the_grace_period(
        story: Story, slapd: Slapd) -> None:
    hr = _world(story, slapd)
    amy = worker("E-2001", "Amy", "Adams")
    hr.upload([amy], mode="delta")
    story.ids["amy"] = hr.identity("E-2001")["id"]
    story.run_engine()
    dn = person_dn("aadams")
    assert members(slapd, "staff") == [dn] and members(slapd, "finance-share") == [dn]

    # Amy asks for the payroll group; Maria, her manager, approves.
    request = story.approve(story.ask("amy", "payroll"))
    story.run_engine()
    assert story.states(request["id"])[0] == "fulfilled"
    assert members(slapd, "payroll") == [dn]

    # She moves to Sales, under Otto.
    moved = hr.upload([{**amy, "Department": "Sales", "Manager ID": "E-OTTO"}], mode="delta")
    assert (moved["state"], moved["counts"]["movers"]) == ("applied", 1)
    [change] = hr.changes(moved["id"])
    assert (change["kind"], change["changed"]) == ("mover",
                                                   ["department", "manager_employee_id"])
    assert (change["before"]["department"], change["after"]["department"]) == (
        "Finance", "Sales")
    ends = (story.clock.now() + GRACE).isoformat()[:19]
    roles = hr.roles_of("E-2001")
    assert {k: (v or "")[:19] or None for k, v in roles.items()} == {
        "r_staff": None, "r_sales": None, "r_finance": ends}
    assert hr.identity("E-2001")["manager_id"] == story.ids["otto"]

    # The requested access is flagged for Otto, the new manager (not for Maria).
    flags = story.call("GET", "/review-flags", who="otto")["items"]
    payroll = story.assignment_of("amy", "payroll")
    assert [(f["assignment_id"], f["reviewer_id"], f["state"]) for f in flags] == [
        (payroll, story.ids["otto"], "open")]
    assert story.call("GET", "/review-flags", who="maria")["items"] == []

    story.run_engine()
    assert members(slapd, "sales-share") == [dn]
    assert members(slapd, "finance-share") == [dn]  # kept during the grace period
    entry = slapd.entry(dn, ["departmentNumber"])
    assert entry is not None and entry.get("departmentNumber") == ["Sales"]

    # Not before the grace period is over ...
    story.clock.advance(GRACE - timedelta(minutes=1))
    assert hr.sweep() == 0
    story.run_engine()
    assert members(slapd, "finance-share") == [dn]
    # ... then the sweep ends the assignment and the engine takes the group away.
    story.clock.advance(timedelta(minutes=2))
    assert hr.sweep() == 1
    story.run_engine()
    assert members(slapd, "finance-share") == []
    assert members(slapd, "sales-share") == [dn] and members(slapd, "staff") == [dn]
    assert members(slapd, "payroll") == [dn]  # requested access waits for Otto's decision
    assert sorted(hr.roles_of("E-2001")) == ["r_sales", "r_staff"]


def test_a_contractor_converted_to_employee_keeps_the_identity_and_changes_roles(
        story: Story, slapd: Slapd) -> None:
    hr = _world(story, slapd)
    carl = worker("E-3001", "Carl", "Cook", kind="contractor", department="Engineering")
    hr.upload([carl], mode="delta")
    first = hr.identity("E-3001")
    story.run_engine()
    dn = person_dn("ccook")
    assert sorted(hr.roles_of("E-3001")) == ["r_contractors"]
    assert members(slapd, "contractors") == [dn] and members(slapd, "staff") == []
    identities = hr.counts()["identities"]

    run = hr.upload([{**carl, "Worker Type": "employee"}], mode="delta")
    assert (run["counts"]["conversions"], run["counts"]["joiners"]) == (1, 0)
    assert [c["kind"] for c in hr.changes(run["id"])] == ["conversion"]
    after = hr.identity("E-3001")
    assert (after["id"], after["employment_type"]) == (first["id"], "employee")
    assert hr.counts()["identities"] == identities
    roles = hr.roles_of("E-3001")
    assert roles["r_staff"] is None and roles["r_contractors"] is not None
    story.run_engine()
    assert members(slapd, "staff") == [dn] and members(slapd, "contractors") == [dn]

    story.clock.advance(GRACE + timedelta(minutes=1))
    assert hr.sweep() == 1
    story.run_engine()
    assert members(slapd, "contractors") == [] and members(slapd, "staff") == [dn]
    assert sorted(hr.roles_of("E-3001")) == ["r_staff"]
