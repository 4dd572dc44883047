"""Sign-off: a reviewer's decisions become final and take effect; the last sign-off closes
the campaign. Progress by reviewer."""

from __future__ import annotations

import uuid

from certification.models import ReviewerSignoff
from idgov.models.assignment import Assignment
from tests.certification.review_world import World


def _assignment(world: World, item_id: uuid.UUID) -> Assignment:
    with world.factory() as session:
        row = session.get(Assignment, world.item_row(item_id).assignment_id)
        assert row is not None
        return row


def test_sign_off_makes_decisions_final_and_applies_them(world: World) -> None:
    keep = world.item("alice", "vpn")
    drop = world.item("bob", "erp_read")
    other = world.item("dan", "vpn", reviewer="max")
    assert world.decide("mia", keep, "certify").status_code == 200
    assert world.decide("mia", drop, "revoke").status_code == 200
    res = world.sign_off("mia")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["reviewer_id"] == str(world.ids["mia"]) and body["campaign_state"] == "active"
    assert body["applied"]["certified"] == 1 and body["applied"]["requested"] == 1
    assert _assignment(world, keep).last_certified_at is not None
    assert _assignment(world, drop).revoked_at is not None
    assert world.item_row(drop).remediation == "requested"
    for item in (keep, drop):
        assert world.decide("mia", item, "pending").status_code == 409
        assert world.decide("admin", item, "revoke", "x").status_code == 409
    assert world.bulk("mia", {"decision": "revoke", "item_ids": [str(keep)]}).status_code == 409
    assert world.bulk("mia", {"decision": "revoke"}).json() == {"decided": 0}
    assert all(i["final"] for i in world.page("mia")["items"])
    assert world.sign_off("mia").status_code == 409
    assert world.actions(world.ids["campaign"]).count("review.sign_off") == 1
    assert world.item_row(other).decision == "pending"


def test_the_last_sign_off_closes_the_campaign(world: World) -> None:
    mine = world.item("alice", "vpn")
    theirs = world.item("dan", "vpn", reviewer="max")
    world.decide("mia", mine, "certify")
    world.decide("max", theirs, "certify")
    assert world.sign_off("mia").json()["campaign_state"] == "active"
    res = world.sign_off("max")
    assert res.status_code == 200, res.text
    assert res.json()["campaign_state"] == "closed"
    assert world.campaign_row().state == "closed"
    assert "campaign.close" in world.actions(world.ids["campaign"])


def test_sign_off_waits_for_every_pending_item(world: World) -> None:
    world.item("alice", "vpn")
    decided = world.item("bob", "vpn")
    world.decide("mia", decided, "certify")
    res = world.sign_off("mia")
    assert res.status_code == 409 and res.json()["pending"] == 1
    with world.factory() as session:
        assert session.get(ReviewerSignoff, (world.ids["campaign"], world.ids["mia"])) is None
    assert world.item_row(decided).remediation == "none"


def test_sign_off_needs_items_an_active_campaign_and_a_person(world: World) -> None:
    item = world.item("alice", "vpn")
    world.decide("mia", item, "certify")
    assert world.sign_off("max").status_code == 404
    assert world.sign_off("admin").status_code == 403
    assert world.sign_off("auditor").status_code == 403
    assert world.sign_off("mia", campaign=uuid.uuid4()).status_code == 404
    world.set_campaign(state="closed")
    assert world.sign_off("mia").status_code == 409


def test_a_group_item_left_untaken_keeps_the_campaign_open(world: World) -> None:
    mine = world.item("alice", "vpn")
    world.item("bob", "vpn", reviewer=None, group="reviewers")
    world.decide("mia", mine, "certify")
    assert world.sign_off("mia").json()["campaign_state"] == "active"


def test_progress_counts_by_decision_and_reviewer(world: World) -> None:
    a, b, _ = (world.item(p, "vpn") for p in ("alice", "bob", "carol"))
    d = world.item("dan", "vpn", reviewer="max")
    world.item("alice", "erp_read", reviewer=None, group="reviewers")
    world.decide("mia", a, "certify")
    world.decide("mia", b, "revoke")
    world.decide("max", d, "certify")
    world.sign_off("max")
    path = f"/campaigns/{world.ids['campaign']}/progress"
    res = world.call("GET", path, "auditor")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["total"] == 5 and body["state"] == "active"
    assert body["by_decision"] == {"pending": 2, "certify": 2, "revoke": 1}
    assert body["reviewers_total"] == 2 and body["reviewers_signed_off"] == 1
    lines = {(r["reviewer_name"], str(r["reviewer_group_id"])): r for r in body["reviewers"]}
    mia = lines[("Mia Manager", "None")]
    assert (mia["total"], mia["pending"], mia["certify"], mia["revoke"]) == (3, 1, 1, 1)
    assert mia["signed_off_at"] is None
    assert lines[("Max Other", "None")]["signed_off_at"] is not None
    assert lines[(None, str(world.ids["reviewers"]))]["pending"] == 1
    own = world.call("GET", path, "mia").json()
    assert [r["reviewer_name"] for r in own["reviewers"]] == ["Mia Manager"]
    assert own["total"] == 3
    assert world.call("GET", path, "dan").status_code == 404
