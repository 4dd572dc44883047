"""What keeps an HR feed from doing harm: the same file twice changes nothing; a truncated
snapshot is held for an administrator, who sees the diff and rejects (nothing applies) or
confirms it; bad rows are reported row by row, in the file's own column names, while the
good rows apply (or nothing does, for an all-or-nothing source); a future-dated
termination in a snapshot waits for its date across re-imports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Story
from tests.e2e.hr_world import (
    Hr,
    birthright,
    csv_bytes,
    directory,
    members,
    population,
    worker,
)
from tests.slapd import Slapd, slapd

__all__ = ["slapd"]


def _loaded(story: Story, server: Slapd, **source: Any) -> tuple[Hr, list[dict[str, str]]]:
    """The directory, the rules, and 20 workers loaded by a first snapshot (never held)."""
    hr = Hr(story)
    directory(hr, server)
    birthright(hr)
    hr.create_source(**source)
    everyone = population(20)
    first = hr.upload(everyone)
    assert (first["state"], first["counts"]["joiners"], first["hold_reason"]) == (
        "applied", 20, None)
    story.run_engine()
    assert len(members(server, "staff")) == 20
    return hr, everyone


def test_the_same_snapshot_twice_reads_every_row_and_changes_nothing(
        story: Story, slapd: Slapd) -> None:
    hr, everyone = _loaded(story, slapd)
    before = hr.counts()
    assert before["operations"] > 0 and before["identity_events"] >= 20

    again = hr.upload(everyone)
    assert again["state"] == "applied"
    assert again["counts"] == {"rows": 20, "unchanged": 20, "joiners": 0, "movers": 0,
                               "leavers": 0, "rehires": 0, "conversions": 0, "updates": 0,
                               "rejected": 0}
    assert hr.changes(again["id"]) == []
    assert hr.counts() == before
    assert story.run_engine().claimed == 0
    # A file differing only in line endings and byte order mark is the same data.
    third = hr.upload(csv_bytes(everyone, bom=False, crlf=False))
    assert third["counts"]["unchanged"] == 20 and hr.counts() == before
    assert third["file_sha256"] != again["file_sha256"]


def test_a_truncated_snapshot_is_held_then_rejected_and_a_second_one_confirmed(
        story: Story, slapd: Slapd) -> None:
    hr, everyone = _loaded(story, slapd)
    before = hr.counts()
    truncated = everyone[:15]

    held = hr.upload(truncated, file_name="truncated.csv")
    assert held["state"] == "held" and held["finished_at"] is None
    assert held["hold_reason"] == ("5 of 20 active identities would leave (25.0%, more than "
                                   "the 5% allowed)")
    assert held["counts"]["leavers"] == 5 and held["counts"]["unchanged"] == 15
    assert hr.counts() == before  # nothing applied
    diff = hr.changes(held["id"])
    assert [(c["employee_id"], c["kind"], c["state"], c["after"].get("_note"))
            for c in diff] == [(f"W{i:03d}", "leaver", "planned", "missing from the snapshot")
                               for i in range(16, 21)]
    assert [r["id"] for r in story.call("GET", "/hr/runs",
                                        params={"state": "held"})["items"]] == [held["id"]]
    # Nothing else runs through the source while a run waits.
    assert "waits for an administrator" in hr.upload(everyone, status=409)["detail"]

    rejected = story.call("POST", f"/hr/runs/{held['id']}/reject",
                          json={"note": "the export stopped half-way"})
    assert (rejected["state"], rejected["decision_note"]) == ("rejected",
                                                             "the export stopped half-way")
    assert rejected["decided_by"] and rejected["finished_at"]
    assert {c["state"] for c in hr.changes(held["id"])} == {"discarded"}
    assert hr.counts() == before
    story.run_engine()
    assert len(members(slapd, "staff")) == 20
    story.call("POST", f"/hr/runs/{held['id']}/confirm", 409, json={})

    # A second truncated file: this time the five did leave, and it is confirmed.
    second = hr.upload(truncated, file_name="leavers.csv")
    assert second["state"] == "held"
    confirmed = story.call("POST", f"/hr/runs/{second['id']}/confirm",
                           json={"note": "checked with HR"})
    assert confirmed["state"] == "applied"
    assert {c["state"] for c in hr.changes(second["id"])} == {"applied"}
    assert [hr.identity(f"W{i:03d}")["lifecycle_state"] for i in (15, 16, 20)] == [
        "active", "terminated", "terminated"]
    assert hr.counts()["active"] == before["active"] - 5
    story.run_engine()
    assert len(members(slapd, "staff")) == 15


BAD_ROWS = [
    worker("G002", "Gail", "Good", manager="G001"),        # row 2: manager further down
    worker("", "Nameless", "Nobody"),                      # row 3: no employee id
    worker("B001", "Bad", "Date", start="2026-13-01"),     # row 4: no 13th month
    worker("U001", "Una", "Unknown", manager="E-NOBODY"),  # row 5: unknown manager
    worker("D001", "Dee", "One"),                          # row 6: duplicate ...
    worker("D001", "Dee", "Two"),                          # row 7: ... employee id
    worker("C001", "Cy", "Cle", manager="C002"),           # row 8: C001 -> C002 ...
    worker("C002", "Cy", "Clone", manager="C001"),         # row 9: ... -> C001
    worker("G001", "Gus", "Good"),                         # row 10
]


def test_bad_rows_are_reported_row_by_row_and_the_good_rows_apply(
        story: Story, slapd: Slapd) -> None:
    hr = Hr(story)
    directory(hr, slapd)
    birthright(hr)
    hr.create_source()
    run = hr.upload(BAD_ROWS, mode="delta")
    assert run["state"] == "applied"
    assert run["counts"]["joiners"] == 2 and run["counts"]["rejected"] == 7
    assert run["counts"]["rows"] == 9
    report = [(e["row"], e["column"], e["employee_id"]) for e in run["errors"]]
    assert sorted(report) == [
        (3, "Worker ID", None), (4, "Start Date", "B001"), (5, "Manager ID", "U001"),
        (6, "Worker ID", "D001"), (7, "Worker ID", "D001"), (8, "Manager ID", "C001"),
        (9, "Manager ID", "C002")]
    messages = {e["row"]: e["message"] for e in run["errors"]}
    assert "E-NOBODY" in messages[5]
    assert "row 7" in messages[6] and "row 6" in messages[7]
    assert messages[3] == "employee id is required"
    assert messages[4] == "'2026-13-01' is not a valid date"
    assert messages[8] == messages[9] == "management cycle: C001 -> C002 -> C001"
    assert story.call("GET", f"/hr/runs/{run['id']}")["errors"] == run["errors"]
    gail, gus = hr.identity("G002"), hr.identity("G001")
    assert gail["manager_id"] == gus["id"]
    for rejected in ("B001", "U001", "D001", "C001", "C002"):
        assert story.call("GET", "/identities", params={"employee_id": rejected})[
            "items"] == []

    # The same kind of file through an all-or-nothing source: nothing applies.
    story.call("PATCH", f"/hr/sources/{hr.source_id}", json={"all_or_nothing": True})
    before = hr.counts()
    strict = [{**row, "Worker ID": row["Worker ID"].replace("G", "H"),
               "Manager ID": row["Manager ID"].replace("G", "H"),
               "Work Email": "h." + row["Work Email"]} for row in BAD_ROWS]
    rejected_run = hr.upload(strict, mode="delta")
    assert rejected_run["state"] == "rejected"
    assert len(rejected_run["errors"]) == 7
    assert hr.changes(rejected_run["id"]) == []
    assert hr.counts() == before
    assert story.call("GET", "/identities", params={"employee_id": "H001"})["items"] == []


def test_a_future_dated_termination_in_a_snapshot_waits_for_its_date(
        story: Story, slapd: Slapd) -> None:
    hr, everyone = _loaded(story, slapd)
    leaving = [{**w, "End Date": "2026-02-10"} if w["Worker ID"] == "W001" else w
               for w in everyone]
    run = hr.upload(leaving)
    assert (run["state"], run["counts"]["leavers"], run["counts"]["unchanged"]) == (
        "applied", 1, 19)
    assert hr.identity("W001")["lifecycle_state"] == "active"
    assert hr.identity("W001")["termination_date"] == "2026-02-10"

    # The same snapshot a few days later: nothing to do, still active.
    story.clock.advance(timedelta(days=5))
    before = hr.counts()
    noop = hr.upload(leaving)
    assert noop["counts"]["unchanged"] == 20 and hr.counts() == before
    assert hr.process_due() == 0
    assert hr.identity("W001")["lifecycle_state"] == "active"

    # London, in winter: the last day ends at midnight UTC.
    story.clock.set(datetime(2026, 2, 10, 23, 59, tzinfo=UTC))
    assert hr.process_due() == 0
    story.clock.set(datetime(2026, 2, 11, 0, 0, tzinfo=UTC))
    assert hr.process_due() == 1
    assert hr.identity("W001")["lifecycle_state"] == "terminated"
    story.run_engine()
    assert len(members(slapd, "staff")) == 19
    # The leaver is still in the next snapshot with the same date: nothing more happens.
    after = hr.upload(leaving)
    assert (after["state"], after["counts"]["unchanged"]) == ("applied", 20)
