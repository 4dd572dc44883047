"""An administrator signs off for a reviewer: POST /certification/campaigns/{id}/sign-off
with {"reviewer_id", "reason"}; everyone else signs off only their own part, with or
without a body."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from certification.models import ReviewerSignoff
from idgov.db.session import unit_of_work
from idgov.models.assignment import Assignment
from idgov.models.auth import ServiceRoleGrant
from idgov.models.notifications import Notification
from tests.certification.review_world import World


def _sign_off(world: World, who: str, body: Any = None, **kwargs: Any) -> Any:
    path = f"/campaigns/{world.ids['campaign']}/sign-off"
    if body is None:
        return world.call("POST", path, who, **kwargs)
    return world.call("POST", path, who, json=body, **kwargs)


def _signed_off(world: World, reviewer: str) -> bool:
    with world.factory() as session:
        return session.get(ReviewerSignoff,
                           (world.ids["campaign"], world.ids[reviewer])) is not None


def _decided_items(world: World) -> tuple[uuid.UUID, uuid.UUID]:
    keep, drop = world.item("alice", "vpn"), world.item("bob", "erp_read")
    assert world.decide("mia", keep, "certify").status_code == 200
    assert world.decide("mia", drop, "revoke").status_code == 200
    return keep, drop


def test_an_administrator_signs_off_for_a_reviewer_with_a_reason(world: World) -> None:
    keep, drop = _decided_items(world)
    world.item("dan", "vpn", reviewer="max")

    res = _sign_off(world, "admin", {"reviewer_id": str(world.ids["mia"]),
                                     "reason": "Mia is on leave until the deadline"})

    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["reviewer_id"], body["on_behalf"], body["signed_off_by"],
            body["campaign_state"]) == (str(world.ids["mia"]), True,
                                        "service_principal:test-admin", "active")
    assert body["applied"] == {"certified": 1, "requested": 1, "escalated": 0}
    assert _signed_off(world, "mia")
    with world.factory() as session:
        kept = session.get(Assignment, world.item_row(keep).assignment_id)
        dropped = session.get(Assignment, world.item_row(drop).assignment_id)
        assert kept is not None and dropped is not None
        # the reviewer's decisions take effect: certified by Mia, revoked by the admin's act
        assert kept.last_certified_by == "identity:Mia Manager"
        assert dropped.revoked_by == "service_principal:test-admin"
        notes = list(session.scalars(select(Notification.kind).where(
            Notification.recipient_id == world.ids["mia"])))
    assert notes.count("certification.signed_off_for_you") == 1
    [event] = world.events("review.sign_off")
    assert (event.actor_type, event.actor_name) == ("service_principal", "test-admin")
    assert event.after is not None and event.after["reviewer_id"] == str(world.ids["mia"])
    assert event.after["items"] == 2
    assert event.context == {"on_behalf_of": str(world.ids["mia"]),
                             "signed_off_by": "service_principal:test-admin",
                             "reason": "Mia is on leave until the deadline"}
    # Mia's part is closed: she cannot sign off again, nor change a decision
    assert world.sign_off("mia").status_code == 409
    assert world.decide("mia", keep, "revoke").status_code == 409


def test_the_last_part_signed_off_by_an_administrator_closes_the_campaign(
        world: World) -> None:
    _decided_items(world)
    res = _sign_off(world, "admin", {"reviewer_id": str(world.ids["mia"]), "reason": "x"})
    assert res.status_code == 200, res.text
    assert res.json()["campaign_state"] == "closed"
    assert world.campaign_row().state == "closed"


def test_a_person_administrator_signs_off_for_someone_else(world: World) -> None:
    with unit_of_work(world.factory) as session:
        session.add(ServiceRoleGrant(identity_id=world.ids["boss"], role="administrator",
                                     granted_by="tests"))
    _decided_items(world)
    res = _sign_off(world, "boss", {"reviewer_id": str(world.ids["mia"]),
                                    "reason": "escalated by the director"})
    assert res.status_code == 200, res.text
    [event] = world.events("review.sign_off")
    assert (event.actor_type, event.actor_id) == ("identity", str(world.ids["boss"]))


def test_without_the_admin_capability_only_ones_own_part(world: World) -> None:
    _decided_items(world)
    other = world.item("dan", "vpn", reviewer="max")
    world.decide("max", other, "certify")
    for who in ("max", "auditor"):
        res = _sign_off(world, who, {"reviewer_id": str(world.ids["mia"]), "reason": "x"})
        assert res.status_code == 403, (who, res.text)
        assert res.headers["content-type"].startswith("application/problem+json")
    assert not _signed_off(world, "mia")
    # naming oneself is signing off one's own part, reason or not
    res = _sign_off(world, "max", {"reviewer_id": str(world.ids["max"])})
    assert res.status_code == 200, res.text
    assert res.json()["on_behalf"] is False
    [event] = world.events("review.sign_off")
    assert event.context is None


def test_a_body_less_or_empty_post_signs_off_ones_own_part(world: World) -> None:
    _decided_items(world)
    other = world.item("dan", "vpn", reviewer="max")
    world.decide("max", other, "certify")
    assert _sign_off(world, "mia").status_code == 200  # no body, no content type
    res = _sign_off(world, "max", {})
    assert res.status_code == 200, res.text
    assert res.json()["reviewer_id"] == str(world.ids["max"])
    # an administrator without an identity must name the reviewer
    assert _sign_off(world, "admin").status_code == 403


def test_invalid_bodies_are_refused_and_change_nothing(world: World) -> None:
    _decided_items(world)
    mia = str(world.ids["mia"])
    cases = [({"reviewer_id": mia}, "reason"),
             ({"reviewer_id": mia, "reason": "   "}, "reason"),
             ({"reviewer_id": str(world.ids["carol"]), "reason": "x"}, "reviewer_id"),
             ({"reviewer_id": str(uuid.uuid4()), "reason": "x"}, "reviewer_id"),
             ({"reviewer_id": "not-a-uuid", "reason": "x"}, "reviewer_id"),
             ({"reviewer_id": mia, "reason": "x", "force": True}, "force")]
    for body, field in cases:
        res = _sign_off(world, "admin", body)
        assert res.status_code == 422, (body, res.text)
        fields = [e["field"] for e in res.json()["errors"]]
        assert any(f.endswith(field) for f in fields), (body, fields)
    assert not _signed_off(world, "mia")
    assert world.events("review.sign_off") == []


def test_the_usual_conflicts_apply_on_behalf(world: World) -> None:
    keep, _drop = _decided_items(world)
    pending = world.item("carol", "vpn")
    body = {"reviewer_id": str(world.ids["mia"]), "reason": "on leave"}
    res = _sign_off(world, "admin", body)
    assert res.status_code == 409 and res.json()["pending"] == 1
    assert not _signed_off(world, "mia")
    assert world.item_row(keep).remediation == "none"

    world.decide("mia", pending, "certify")
    world.item("dan", "vpn", reviewer="max")  # keeps the campaign open after Mia
    assert _sign_off(world, "admin", body).status_code == 200
    assert _sign_off(world, "admin", body).status_code == 409  # already signed off

    world.set_campaign(state="closed")
    res = _sign_off(world, "admin", {"reviewer_id": str(world.ids["max"]), "reason": "x"})
    assert res.status_code == 409
    assert not _signed_off(world, "max")
    assert world.call("POST", f"/campaigns/{uuid.uuid4()}/sign-off", "admin",
                      json=body).status_code == 404
