"""Bulk decisions: over a filter, over listed ids, one audit event per item, nothing
changed when one item is wrong."""

from __future__ import annotations

import uuid

from tests.certification.review_world import World


def test_bulk_over_a_filter_decides_only_the_callers_open_matching_items(world: World) -> None:
    low = [world.item(p, "vpn") for p in ("alice", "bob", "carol")]
    read = world.item("alice", "erp_read")
    post = world.item("bob", "erp_post")
    other = world.item("dan", "vpn", reviewer="max")
    res = world.bulk("mia", {"decision": "certify", "filter": {"privileged": False,
                                                               "q": "vpn"}})
    assert res.status_code == 200, res.text
    assert res.json() == {"decided": 3}
    assert {world.item_row(i).decision for i in low} == {"certify"}
    for untouched in (read, post, other):
        assert world.item_row(untouched).decision == "pending"
    events = world.events("review_item.decide")
    assert sorted(e.object_id or "" for e in events) == sorted(str(i) for i in low)
    assert all(e.context and e.context["bulk"] for e in events)
    assert all(e.actor_name == "Mia Manager" for e in events)
    assert {(e.before or {}).get("decision") for e in events} == {"pending"}


def test_bulk_without_a_selection_takes_every_open_item_of_the_caller(world: World) -> None:
    mine = [world.item("alice", "vpn"), world.item("bob", "erp_read")]
    world.item("dan", "vpn", reviewer="max")
    res = world.bulk("mia", {"decision": "revoke"})
    assert res.json() == {"decided": 2}
    assert {world.item_row(i).decision for i in mine} == {"revoke"}


def test_bulk_over_ids_and_changing_the_decision_again(world: World) -> None:
    a, b, c = (world.item(p, "vpn") for p in ("alice", "bob", "carol"))
    assert world.bulk("mia", {"decision": "certify", "item_ids": [str(a), str(b)]}).json() == {
        "decided": 2}
    assert world.item_row(c).decision == "pending"
    assert world.bulk("mia", {"decision": "revoke", "item_ids": [str(a)],
                              "comment": "moved team"}).json() == {"decided": 1}
    row = world.item_row(a)
    assert row.decision == "revoke" and row.comment == "moved team"
    last = world.events("review_item.decide")[-1]
    assert last.before is not None and last.before["decision"] == "certify"


def test_bulk_with_a_foreign_or_unknown_id_changes_nothing(world: World) -> None:
    mine = world.item("alice", "vpn")
    other = world.item("dan", "vpn", reviewer="max")
    for ids in ([mine, other], [mine, uuid.uuid4()]):
        res = world.bulk("mia", {"decision": "certify", "item_ids": [str(i) for i in ids]})
        assert res.status_code == 404, res.text
    assert world.item_row(mine).decision == "pending"
    assert world.events("review_item.decide") == []


def test_bulk_needs_the_mandatory_comment_for_any_selected_item(world: World) -> None:
    plain = world.item("alice", "vpn")
    post = world.item("bob", "erp_post")
    res = world.bulk("mia", {"decision": "revoke"})
    assert res.status_code == 422 and res.json()["errors"][0]["field"] == "comment"
    res = world.bulk("mia", {"decision": "certify", "filter": {"sod": False}})
    assert res.status_code == 200
    assert world.item_row(plain).decision == world.item_row(post).decision == "certify"
    sod = world.item("carol", "vpn", sod=True)
    res = world.bulk("mia", {"decision": "certify", "item_ids": [str(sod)]})
    assert res.status_code == 422


def test_an_administrator_bulk_decides_any_item_auditors_none(world: World) -> None:
    world.item("alice", "vpn")
    world.item("dan", "vpn", reviewer="max")
    assert world.bulk("auditor", {"decision": "certify"}).status_code == 403
    res = world.bulk("admin", {"decision": "certify", "filter": {"risk": "low"}})
    assert res.json() == {"decided": 2}


def test_bulk_on_a_closed_campaign_or_with_both_selections_is_refused(world: World) -> None:
    item = world.item("alice", "vpn")
    res = world.bulk("mia", {"decision": "certify", "item_ids": [str(item)], "filter": {}})
    assert res.status_code == 422
    world.set_campaign(state="closed")
    assert world.bulk("mia", {"decision": "certify"}).status_code == 409
    assert world.bulk("mia", {"decision": "certify"},
                      campaign=uuid.uuid4()).status_code == 404
    assert world.item_row(item).decision == "pending"


def test_group_members_take_what_they_bulk_decide(world: World) -> None:
    item = world.item("alice", "vpn", reviewer=None, group="reviewers")
    assert world.bulk("gus", {"decision": "certify"}).json() == {"decided": 1}
    assert world.item_row(item).reviewer_id == world.ids["gus"]
    event = world.events("review_item.decide")[0]
    assert event.after is not None and event.after["reviewer_id"] == str(world.ids["gus"])
