"""Deciding one item: who may, changing one's mind, mandatory comments, closed campaigns."""

from __future__ import annotations

import uuid

import pytest

from tests.certification.review_world import World


def test_a_reviewer_decides_and_changes_their_mind_until_sign_off(world: World) -> None:
    item = world.item("alice", "vpn")
    res = world.decide("mia", item, "certify")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["decision"] == "certify" and body["decided_by"] == "identity:Mia Manager"
    assert body["decided_at"] is not None
    assert world.decide("mia", item, "revoke", "no longer needed").json()["decision"] == "revoke"
    undone = world.decide("mia", item, "pending").json()
    assert undone["decision"] == "pending" and undone["decided_at"] is None
    assert world.item_row(item).decision == "pending"
    events = [e for e in world.events("review_item.decide") if e.object_id == str(item)]
    assert [(e.before or {}).get("decision") for e in events] == ["pending", "certify",
                                                                 "revoke"]
    assert [(e.after or {}).get("decision") for e in events] == ["certify", "revoke",
                                                                "pending"]
    assert events[1].after is not None and events[1].after["comment"] == "no longer needed"


def test_someone_elses_item_does_not_exist_and_auditors_decide_nothing(world: World) -> None:
    item = world.item("alice", "vpn")
    for who, status in (("max", 404), ("bob", 404), ("alice", 404), ("auditor", 403)):
        assert world.decide(who, item, "certify").status_code == status, who
    assert world.decide("mia", uuid.uuid4(), "certify").status_code == 404
    assert world.item_row(item).decision == "pending"


def test_an_administrator_decides_any_item_and_is_recorded(world: World) -> None:
    item = world.item("alice", "vpn")
    res = world.decide("admin", item, "revoke", "left the project")
    assert res.status_code == 200, res.text
    assert res.json()["decided_by"] == "service_principal:test-admin"
    event = next(e for e in world.events("review_item.decide") if e.object_id == str(item))
    assert event.actor_name == "test-admin"
    assert event.context is not None and event.context["administrator_override"] is True


@pytest.mark.parametrize(("access", "sod", "decision"), [
    ("erp_post", False, "revoke"),     # revoking privileged access
    ("vpn", True, "certify"),          # certifying an SoD conflict
])
def test_a_comment_is_mandatory_for_the_risky_decisions(world: World, access: str, sod: bool,
                                                        decision: str) -> None:
    item = world.item("alice", access, sod=sod)
    for comment in (None, "   "):
        res = world.decide("mia", item, decision, comment)
        assert res.status_code == 422, res.text
        assert [e["field"] for e in res.json()["errors"]] == ["comment"]
    assert world.item_row(item).decision == "pending"
    assert world.decide("mia", item, decision, "checked with the owner").status_code == 200


def test_the_easy_decisions_need_no_comment(world: World) -> None:
    post = world.item("alice", "erp_post")
    sod = world.item("bob", "vpn", sod=True)
    assert world.decide("mia", post, "certify").status_code == 200
    assert world.decide("mia", sod, "revoke").status_code == 200


@pytest.mark.parametrize("state", ["draft", "closed", "cancelled"])
def test_no_decision_outside_an_active_campaign(world: World, state: str) -> None:
    item = world.item("alice", "vpn")
    world.set_campaign(state=state)
    res = world.decide("mia", item, "certify")
    assert res.status_code == 409, res.text
    assert world.decide("admin", item, "certify").status_code == 409
    assert world.item_row(item).decision == "pending"


def test_a_group_member_takes_the_item_they_decide(world: World) -> None:
    item = world.item("alice", "vpn", reviewer=None, group="reviewers")
    assert world.decide("gus", item, "certify").status_code == 200
    assert world.item_row(item).reviewer_id == world.ids["gus"]
    assert world.page("carol")["items"] == []
    assert world.decide("carol", item, "revoke").status_code == 404


def test_an_unknown_decision_is_refused(world: World) -> None:
    item = world.item("alice", "vpn")
    res = world.decide("mia", item, "approve")
    assert res.status_code == 422
    assert world.item_row(item).decision == "pending"
