"""Role composition over HTTP: links are end-dated with a reason, cycles and duplicates refused."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.catalog import RoleEntitlement, RoleInclusion
from tests.catalog.factories import Api, audit_actions


def test_inclusion_that_closes_a_cycle_is_422_naming_the_cycle(api: Api) -> None:
    a, b, c = api.role("A"), api.role("B"), api.role("C")
    api.include(a, b)
    api.include(b, c)
    resp = api.client.post(f"/roles/{c}/included-roles", headers=api.headers,
                           json={"role_id": a})
    assert resp.status_code == 422
    body = resp.json()
    assert body["title"] == "Role inclusion cycle"
    assert body["cycle"] == ["C", "A", "B", "C"]
    assert "C -> A -> B -> C" in body["detail"]
    assert body["errors"][0]["field"] == "role_id"


def test_a_role_cannot_include_itself(api: Api) -> None:
    a = api.role("A")
    resp = api.client.post(f"/roles/{a}/included-roles", headers=api.headers,
                           json={"role_id": a})
    assert resp.status_code == 422
    assert resp.json()["cycle"] == ["A", "A"]


def test_an_ended_link_does_not_count_towards_a_cycle(api: Api) -> None:
    a, b = api.role("A"), api.role("B")
    api.include(a, b)
    api.ok("DELETE", f"/roles/{a}/included-roles/{b}", params={"reason": "split"})
    assert api.include(b, a)["child_role_id"] == a


def test_duplicate_active_links_are_409(api: Api) -> None:
    a, b = api.role("A"), api.role("B")
    ent = api.entitlement("gl-read")
    api.include(a, b)
    api.grant(a, ent)
    assert api.client.post(f"/roles/{a}/included-roles", headers=api.headers,
                           json={"role_id": b}).status_code == 409
    assert api.client.post(f"/roles/{a}/entitlements", headers=api.headers,
                           json={"entitlement_id": ent}).status_code == 409


def test_unknown_included_role_or_entitlement_is_422_and_unknown_parent_404(api: Api) -> None:
    a = api.role("A")
    missing = "00000000-0000-0000-0000-000000000042"
    resp = api.client.post(f"/roles/{a}/included-roles", headers=api.headers,
                           json={"role_id": missing})
    assert (resp.status_code, resp.json()["errors"][0]["field"]) == (422, "role_id")
    resp = api.client.post(f"/roles/{a}/entitlements", headers=api.headers,
                           json={"entitlement_id": missing})
    assert (resp.status_code, resp.json()["errors"][0]["field"]) == (422, "entitlement_id")
    resp = api.client.post(f"/roles/{missing}/included-roles", headers=api.headers,
                           json={"role_id": a})
    assert resp.status_code == 404


def test_ending_a_link_end_dates_it_with_the_reason_and_keeps_the_row(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    a, b = api.role("A"), api.role("B")
    ent = api.entitlement("gl-read")
    api.include(a, b)
    api.grant(a, ent)
    clock.advance(timedelta(days=3))
    ended = api.ok("DELETE", f"/roles/{a}/included-roles/{b}",
                   params={"reason": "no longer needed"})
    assert ended["end_reason"] == "no longer needed"
    assert datetime.fromisoformat(ended["valid_until"]) == clock.now()
    api.ok("DELETE", f"/roles/{a}/entitlements/{ent}", params={"reason": "moved"})
    detail = api.ok("GET", f"/roles/{a}")
    assert (detail["included_roles"], detail["entitlements"]) == ([], [])
    with unit_of_work(session_factory) as session:
        assert session.scalars(select(RoleInclusion.end_reason)).all() == ["no longer needed"]
        assert session.scalars(select(RoleEntitlement.end_reason)).all() == ["moved"]
    assert audit_actions(session_factory, a) == [
        "role.create", "role.include_role", "role.add_entitlement", "role.end_inclusion",
        "role.end_entitlement"]


def test_ending_needs_a_reason_and_an_open_link(api: Api) -> None:
    a, b = api.role("A"), api.role("B")
    assert api.client.delete(f"/roles/{a}/included-roles/{b}",
                             headers=api.headers).status_code == 422
    assert api.client.delete(f"/roles/{a}/included-roles/{b}", headers=api.headers,
                             params={"reason": "x"}).status_code == 404


def test_a_link_can_be_scheduled_but_not_back_dated(api: Api, clock: FixedClock) -> None:
    a, b, c = api.role("A"), api.role("B"), api.role("C")
    later = (clock.now() + timedelta(days=7)).isoformat()
    scheduled = api.ok("POST", f"/roles/{a}/included-roles", 201,
                       json={"role_id": b, "valid_from": later})
    assert datetime.fromisoformat(scheduled["valid_from"]) == clock.now() + timedelta(days=7)
    assert api.ok("GET", f"/roles/{a}")["included_roles"] == []
    earlier = (clock.now() - timedelta(days=1)).isoformat()
    resp = api.client.post(f"/roles/{a}/included-roles", headers=api.headers,
                           json={"role_id": c, "valid_from": earlier})
    assert (resp.status_code, resp.json()["errors"][0]["field"]) == (422, "valid_from")
    # A scheduled link already counts for cycles: it will hold.
    resp = api.client.post(f"/roles/{b}/included-roles", headers=api.headers,
                           json={"role_id": a})
    assert resp.status_code == 422
