"""A reviewer's page: row rules, filters, grouped-by-person order, keyset pages, one
item's detail."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event

from tests.certification.review_world import World


def _names(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["identity_name"], i["access_name"]) for i in page["items"]]


def test_a_manager_sees_only_their_items_grouped_by_person(world: World) -> None:
    world.item("bob", "erp_read")
    world.item("alice", "vpn")
    world.item("carol", "clerk")
    world.item("alice", "erp_post")
    world.item("dan", "vpn", reviewer="max")
    page = world.page("mia")
    names = _names(page)
    assert [n for n, _ in names] == ["Alice Adams", "Alice Adams", "Bob Brown", "Carol Clark"]
    assert {a for n, a in names if n == "Alice Adams"} == {"VPN", "ERP-POST"}
    first = page["items"][0]
    assert first["application_name"] == "Ledger" and first["decision"] == "pending"
    assert first["final"] is False and "context" not in first
    carol = page["items"][3]
    assert carol["access_name"] == "Clerk" and carol["application_name"] is None
    assert _names(world.page("max")) == [("Dan Dune", "VPN")]
    assert world.page("alice")["items"] == []


def test_auditors_and_administrators_see_every_item(world: World) -> None:
    world.item("alice", "vpn")
    world.item("dan", "vpn", reviewer="max")
    for who in ("auditor", "admin"):
        assert [n for n, _ in _names(world.page(who))] == ["Alice Adams", "Dan Dune"]
    assert _names(world.page("auditor", reviewer_id=str(world.ids["max"]))) == [
        ("Dan Dune", "VPN")]


def test_filters_narrow_the_page(world: World) -> None:
    world.item("alice", "vpn")
    post = world.item("alice", "erp_post")
    admin = world.item("bob", "erp_admin", sod=True)
    world.item("carol", "erp_read")
    assert world.decide("mia", post, "certify").status_code == 200

    def accesses(**params: Any) -> set[str]:
        return {a for _, a in _names(world.page("mia", **params))}

    assert accesses(risk="high") == {"ERP-POST", "ERP-ADMIN"}
    assert accesses(risk="critical") == {"ERP-ADMIN"}
    assert accesses(decision="certify") == {"ERP-POST"}
    assert accesses(decision="pending", privileged="true") == {"ERP-ADMIN"}
    assert accesses(privileged="false") == {"VPN", "ERP-READ"}
    assert accesses(sod="true") == {"ERP-ADMIN"}
    assert accesses(identity_id=str(world.ids["alice"])) == {"VPN", "ERP-POST"}
    assert accesses(application_id=str(world.ids["ledger"])) == {
        "VPN", "ERP-POST", "ERP-ADMIN", "ERP-READ"}
    assert accesses(application_id=str(uuid.uuid4())) == set()
    assert accesses(q="brown") == {"ERP-ADMIN"}
    assert accesses(q="erp-r") == {"ERP-READ"}
    assert accesses(q="%") == set()
    assert world.page("mia", sod="true")["items"][0]["id"] == str(admin)


def test_keyset_pages_walk_every_item_once_in_order(world: World) -> None:
    made = [world.item(p, e) for p in ("carol", "alice", "bob") for e in ("vpn", "erp_read")]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = world.page("mia", **params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(i) for i in made) and len(seen) == len(made)
    names = [world.item_row(uuid.UUID(i)).identity_id for i in seen]
    order = [world.ids["alice"]] * 2 + [world.ids["bob"]] * 2 + [world.ids["carol"]] * 2
    assert names == order


def test_limit_and_cursor_are_checked(world: World) -> None:
    path = f"/campaigns/{world.ids['campaign']}/items"
    assert world.call("GET", path, "mia", params={"limit": 501}).status_code == 422
    res = world.call("GET", path, "mia", params={"cursor": "nonsense"})
    assert res.status_code == 422 and res.json()["errors"][0]["field"] == "cursor"
    assert world.call("GET", path, "mia", params={"colour": "red"}).status_code == 422
    res = world.call("GET", f"/campaigns/{uuid.uuid4()}/items", "mia")
    assert res.status_code == 404


def test_the_page_is_one_query_whatever_its_size(world: World) -> None:
    for person in ("alice", "bob", "carol"):
        for access in ("vpn", "erp_read", "erp_post", "erp_admin", "clerk"):
            world.item(person, access)
    engine = world.factory.kw["bind"]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = world.page("mia", limit=500)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(page["items"]) == 15
    item_queries = [s for s in statements if "cert_review_items" in s]
    assert len(item_queries) == 1, item_queries


def test_detail_shows_the_context_and_someone_elses_item_does_not_exist(world: World) -> None:
    item = world.item("alice", "erp_post", context={"how": {"request": "REQ-2026-000001"}})
    res = world.call("GET", f"/items/{item}", "mia")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["context"] == {"how": {"request": "REQ-2026-000001"}}
    assert body["identity_name"] == "Alice Adams" and body["privileged"] is True
    assert world.call("GET", f"/items/{item}", "auditor").status_code == 200
    assert world.call("GET", f"/items/{item}", "max").status_code == 404
    assert world.call("GET", f"/items/{item}", "alice").status_code == 404
    assert world.call("GET", f"/items/{uuid.uuid4()}", "admin").status_code == 404


def test_group_items_are_seen_by_members_but_never_about_themselves(world: World) -> None:
    alice = world.item("alice", "vpn", reviewer=None, group="reviewers")
    carol = world.item("carol", "vpn", reviewer=None, group="reviewers")
    assert {i["id"] for i in world.page("gus")["items"]} == {str(alice), str(carol)}
    assert {i["id"] for i in world.page("carol")["items"]} == {str(alice)}
    assert world.call("GET", f"/items/{carol}", "carol").status_code == 404
