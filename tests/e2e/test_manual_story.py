"""A manual application: the approved line becomes a task for the application's resolution
group; a member completes it and the line is fulfilled; giving the access back is a task too."""

from __future__ import annotations

from tests.e2e.conftest import Story


def test_an_approved_line_becomes_a_task_a_member_completes_and_the_line_is_fulfilled(
        story: Story) -> None:
    story.application("erp", "Legacy ERP", "manual", {})
    story.entitlement("ledger", "erp", "Ledger", "LEDGER-RW")

    request = story.approve(story.ask("jane", "ledger"))
    assert story.states(request["id"]) == ("provisioning", ["provisioning"])
    assert story.call("GET", "/fulfilment/tasks", who="fay")["items"] == []  # not before
    stats = story.run_engine()
    assert (stats.succeeded, stats.failed, stats.running) == (0, 0, 1)
    assert story.run_engine().claimed == 0  # the operation waits for the task, unclaimed

    # Both members of the resolution group see the task; nobody else works it.
    tasks = story.call("GET", "/fulfilment/tasks", who="fay")["items"]
    assert [(t["summary"], t["state"], t["group_id"], t["identity_id"]) for t in tasks] == [(
        "Grant Ledger [LEDGER-RW] to Jane Smith (jsmith) in Legacy ERP. "
        "Create the account jsmith first if Jane Smith has none there.",
        "open", story.ids["support"], story.ids["jane"])]
    task = tasks[0]
    assert [t["id"] for t in story.call("GET", "/fulfilment/tasks", who="finn")["items"]] == [
        task["id"]]
    assert story.call("GET", "/fulfilment/tasks", who="jane")["items"] == []
    story.call("POST", f"/fulfilment/tasks/{task['id']}/complete", 404, who="maria",
               json={"note": "done"})
    assert [(o["action"], o["state"]) for o in story.operations("erp")] == [
        ("grant", "running")]
    assert story.states(request["id"]) == ("provisioning", ["provisioning"])

    done = story.call("POST", f"/fulfilment/tasks/{task['id']}/complete", who="fay",
                      json={"note": "Account jsmith created, Ledger added"})
    assert (done["state"], done["completed_by_id"]) == ("completed", story.ids["fay"])
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled"])
    assert story.summary("erp") == [("grant", "ledger", "succeeded")]
    accounts = story.call("GET", "/accounts", params={"identity_id": story.ids["jane"]})
    assert [(a["username"], a["status"]) for a in accounts["items"]] == [("jsmith", "active")]
    assert story.call("GET", "/fulfilment/tasks", who="fay")["items"] == []

    # Taking the access away is a task as well; the operation follows it.
    story.revoke("jane", "ledger")
    story.run_engine()
    tasks = story.call("GET", "/fulfilment/tasks", who="finn")["items"]
    assert len(tasks) == 1 and tasks[0]["summary"].startswith("Revoke Ledger [LEDGER-RW]")
    assert ("revoke", "ledger", "running") in story.summary("erp")
    story.call("POST", f"/fulfilment/tasks/{tasks[0]['id']}/complete", who="finn", json={})
    assert story.summary("erp") == [("grant", "ledger", "succeeded"),
                                    ("revoke", "ledger", "succeeded")]
    assert story.call("GET", "/fulfilment/tasks", who="fay")["items"] == []
