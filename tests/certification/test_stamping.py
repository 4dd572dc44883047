"""Rubber-stamping: a reviewer certifying everything in bulk, high-risk included, is
reported with the evidence; a careful reviewer is not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from certification.stamping import (
    BULK_BATCH_MIN,
    FAST_MEDIAN_SECONDS,
    MIN_DECISIONS,
    ReviewerEvidence,
    judge,
)
from tests.certification.review_world import World

REPORTS = ["alice", "bob", "carol"]
ACCESS = ["vpn", "erp_read", "erp_post", "erp_admin"]


def _report(world: World, who: str = "auditor") -> dict[str, dict[str, Any]]:
    res = world.call("GET", f"/campaigns/{world.ids['campaign']}/rubber-stamping", who)
    assert res.status_code == 200, res.text
    return {r["reviewer_name"]: r for r in res.json()["reviewers"]}


def test_a_bulk_certifier_is_reported_and_a_careful_reviewer_spared(world: World) -> None:
    for person in REPORTS:
        for access in ACCESS:
            world.item(person, access)              # 12 items for Mia, 4 of them high-risk
    careful = [world.item("dan", access, reviewer="max") for access in ACCESS * 3]
    assert world.bulk("mia", {"decision": "certify"}).json() == {"decided": 12}
    for n, item in enumerate(careful):
        world.clock.advance(timedelta(minutes=3))
        revoke = n % 4 == 0
        comment = "not needed" if revoke else None
        assert world.decide("max", item, "revoke" if revoke else "certify",
                            comment).status_code == 200
    report = _report(world)
    mia, max_ = report["Mia Manager"], report["Max Other"]
    assert mia["suspected"] is True and mia["severity"] == "high"
    assert set(mia["signals"]) == {"certifies_everything", "very_fast", "bulk",
                                   "high_risk_included"}
    assert mia["certify_share"] == 1.0 and mia["bulk_share"] == 1.0
    assert mia["high_risk_certified"] == 6 and mia["median_seconds_between_decisions"] == 0
    assert max_["suspected"] is False and max_["severity"] is None
    assert max_["revoked"] == 3 and max_["median_seconds_between_decisions"] == 180
    assert max_["bulk_share"] == 0
    assert next(iter(report)) == "Mia Manager"


def test_the_report_is_for_administrators_and_auditors(world: World) -> None:
    world.item("alice", "vpn")
    assert _report(world, "admin")["Mia Manager"]["decided"] == 0
    path = f"/campaigns/{world.ids['campaign']}/rubber-stamping"
    assert world.call("GET", path, "mia").status_code == 403


@pytest.mark.parametrize(("numbers", "suspected", "signals"), [
    # everything certified, fast, but too few decisions to tell
    ({"decided": MIN_DECISIONS - 1, "certified": MIN_DECISIONS - 1,
      "median_seconds_between_decisions": 1.0}, False, {"certifies_everything", "very_fast"}),
    # everything certified one at a time, quickly
    ({"decided": 40, "certified": 40, "median_seconds_between_decisions": 2.0}, True,
     {"certifies_everything", "very_fast"}),
    # everything certified, slowly, one by one: careful enough
    ({"decided": 40, "certified": 40, "median_seconds_between_decisions": 120.0}, False,
     {"certifies_everything"}),
    # fast and in bulk, but revoking a fair share
    ({"decided": 40, "certified": 30, "revoked": 10, "bulk_share": 0.9,
      "median_seconds_between_decisions": 0.0}, False, {"very_fast", "bulk"}),
])
def test_the_judgement_over_the_numbers(numbers: dict[str, float], suspected: bool,
                                        signals: set[str]) -> None:
    import uuid

    evidence = judge(ReviewerEvidence(reviewer_id=uuid.uuid4(), **numbers))  # type: ignore[arg-type]
    assert evidence.suspected is suspected
    assert set(evidence.signals) == signals
    assert evidence.severity == ("medium" if suspected else None)
    assert FAST_MEDIAN_SECONDS > 2.0 and BULK_BATCH_MIN >= 2
