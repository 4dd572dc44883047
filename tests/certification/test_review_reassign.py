"""Reassignment: to an active person other than the one whose access it is; the new
reviewer is told and decides afresh."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from idgov.models.notifications import Notification
from tests.certification.review_world import World


def _notes(world: World, who: str) -> list[Notification]:
    with world.factory() as session:
        return list(session.scalars(select(Notification).where(
            Notification.recipient_id == world.ids[who])))


def test_reassigning_moves_the_item_and_tells_the_new_reviewer(world: World) -> None:
    item = world.item("alice", "erp_read")
    assert world.decide("mia", item, "certify").status_code == 200
    res = world.reassign("mia", item, world.ids["boss"], "Bea knows this ledger")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["reviewer_id"] == str(world.ids["boss"])
    assert body["original_reviewer_id"] == str(world.ids["mia"])
    assert body["decision"] == "pending" and body["decided_by"] is None
    assert world.page("mia")["items"] == []
    assert [i["id"] for i in world.page("boss")["items"]] == [str(item)]
    notes = _notes(world, "boss")
    assert [n.kind for n in notes] == ["certification.reassigned"]
    assert "Alice Adams" in notes[0].subject and "Bea knows this ledger" in notes[0].body
    assert world.decide("boss", item, "revoke").status_code == 200
    assert world.actions(item) == ["review_item.decide", "review_item.reassign",
                                   "review_item.decide"]
    event = world.events("review_item.reassign")[0]
    assert event.before is not None and event.before["reviewer_id"] == str(world.ids["mia"])
    assert event.after is not None and event.after["reviewer_id"] == str(world.ids["boss"])
    assert event.context is not None and event.context["comment"] == "Bea knows this ledger"


def test_nobody_reviews_their_own_access_through_reassignment(world: World) -> None:
    item = world.item("alice", "erp_read")
    res = world.reassign("mia", item, world.ids["alice"])
    assert res.status_code == 422, res.text
    assert res.json()["errors"][0]["field"] == "to_identity_id"
    assert world.reassign("admin", item, world.ids["alice"]).status_code == 422
    assert world.item_row(item).reviewer_id == world.ids["mia"]


def test_reassigning_to_an_inactive_unknown_or_current_reviewer_is_refused(
        world: World) -> None:
    item = world.item("alice", "erp_read")
    for target in (world.ids["tom"], uuid.uuid4(), world.ids["mia"]):
        res = world.reassign("mia", item, target)
        assert res.status_code == 422, (target, res.text)
        assert res.json()["errors"][0]["field"] == "to_identity_id"
    assert world.item_row(item).reviewer_id == world.ids["mia"]
    assert world.events("review_item.reassign") == []
    assert _notes(world, "tom") == []


def test_only_the_reviewer_or_an_administrator_reassigns(world: World) -> None:
    item = world.item("alice", "erp_read")
    assert world.reassign("max", item, world.ids["boss"]).status_code == 404
    assert world.reassign("auditor", item, world.ids["boss"]).status_code == 403
    res = world.reassign("admin", item, world.ids["max"], "Mia is on leave")
    assert res.status_code == 200, res.text
    event = world.events("review_item.reassign")[0]
    assert event.actor_name == "test-admin"
    assert event.context is not None and event.context["administrator_override"] is True


def test_a_group_item_reassigned_leaves_the_group(world: World) -> None:
    item = world.item("alice", "vpn", reviewer=None, group="reviewers")
    res = world.reassign("gus", item, world.ids["boss"])
    assert res.status_code == 200, res.text
    assert res.json()["reviewer_group_id"] is None
    assert world.page("gus")["items"] == []


def test_no_reassignment_to_a_reviewer_who_signed_off_or_in_a_closed_campaign(
        world: World) -> None:
    done = world.item("dan", "vpn", reviewer="max")
    item = world.item("alice", "erp_read")
    assert world.decide("max", done, "certify").status_code == 200
    assert world.sign_off("max").status_code == 200
    assert world.reassign("mia", item, world.ids["max"]).status_code == 409
    world.set_campaign(state="cancelled")
    assert world.reassign("mia", item, world.ids["boss"]).status_code == 409
    assert world.item_row(item).reviewer_id == world.ids["mia"]
