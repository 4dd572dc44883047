"""Stories of time: duplicates refused and a repeat after expiry allowed, an extension, and a
time-bound grant that warns before it ends and then ends by itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from idgov.config import Settings
from idgov.requests.cli import sweep
from tests.requests.conftest import World, waiting

TEMP = "temporary-elevated-access"


def _approve_all(world: World, request_id: str) -> Any:
    body = world.request(request_id)
    while body["lines"][0]["state"] == "pending_approval":
        step = waiting(body["lines"][0])
        approver = next(k for k, v in world.ids.items() if v == step["approvers"][0])
        resp = world.decide(approver, step["id"])
        assert resp.status_code == 200, resp.text
        body = resp.json()
    return body


def test_duplicates_name_the_pending_line_then_the_assignment(world: World) -> None:
    first = world.ask("alice", "ledger")
    dup = world.ask("alice", "ledger", status=409)
    assert (dup["request_number"], dup["line_number"]) == ("REQ-2026-000001",
                                                           "RITM-2026-000001")
    assert "REQ-2026-000001/RITM-2026-000001" in dup["detail"]
    # Someone else may ask for the same thing.
    world.ask("bob", "ledger")

    _approve_all(world, first["id"])
    [held] = world.assignments("alice")
    dup = world.ask("alice", "ledger", status=409)
    assert dup["assignment_id"] == held["id"]
    assert held["id"] in dup["detail"]


def test_a_time_bound_grant_warns_then_expires_and_may_be_asked_again(
        world: World, settings: Settings) -> None:
    req = world.ask("alice", "glass", type_key=TEMP, line={"duration_days": 10})
    assert req["lines"][0]["decision"]["requested_duration_days"] == 10
    world.clock.advance(timedelta(hours=1))
    approved_at = world.clock.now()
    body = _approve_all(world, req["id"])
    [line] = body["lines"]
    [grant] = world.assignments("alice")
    ends = approved_at + timedelta(days=10)
    assert grant["valid_until"].startswith(ends.strftime("%Y-%m-%dT%H:%M"))
    assert line["valid_until"] == grant["valid_until"]

    # More than the warning period (7 days) before the end: nothing to say.
    world.clock.advance(timedelta(days=2))
    mail = world.outbox()
    assert sweep(world.factory, settings=settings, clock=world.clock).warned == 0
    # Six days before the end: the beneficiary and their manager are warned, once.
    world.clock.advance(timedelta(days=2))
    result = sweep(world.factory, settings=settings, clock=world.clock)
    assert (result.warned, result.expired) == (2, 0)
    assert world.new_mail(mail) == [("grant.expiring", "alice"), ("grant.expiring", "manager")]
    assert sweep(world.factory, settings=settings, clock=world.clock).warned == 0

    world.clock.advance(timedelta(days=6, minutes=1))
    mail = world.outbox()
    result = sweep(world.factory, settings=settings, clock=world.clock)
    assert result.expired == 1
    assert world.new_mail(mail) == [("grant.expired", "alice"), ("grant.expired", "manager")]
    [ended] = world.assignments("alice")
    assert ended["revoked_at"] is not None
    assert ended["revoke_reason"] == "time-bound grant expired"
    ops = world.client.get("/provisioning/operations", headers=world.admin,
                           params={"identity_id": world.ids["alice"]}).json()["items"]
    assert sorted((o["action"], o["cause"]) for o in ops) == [
        ("grant", "assignment"), ("revoke", "expiry")]
    assert sweep(world.factory, settings=settings, clock=world.clock).expired == 0

    # After expiry, asking again is no duplicate.
    again = world.ask("alice", "glass", type_key=TEMP, line={"duration_days": 5})
    assert again["state"] == "pending_approval"


def test_a_grant_ending_soon_may_be_extended_from_its_end(world: World) -> None:
    req = world.ask("alice", "glass", type_key=TEMP, line={"duration_days": 14})
    _approve_all(world, req["id"])
    [current] = world.assignments("alice")
    # 13 days left: within the 14-day window, so it may be extended.
    world.clock.advance(timedelta(days=1))
    ext = world.ask("alice", "glass", type_key=TEMP, line={"duration_days": 7})
    assert ext["lines"][0]["decision"]["extends_assignment_id"] == current["id"]
    _approve_all(world, ext["id"])
    later = [a for a in world.assignments("alice") if a["id"] != current["id"]]
    [new] = later
    assert new["valid_from"] == current["valid_until"]


def test_a_grant_ending_after_the_window_is_a_duplicate_until_it_nears_its_end(
        world: World) -> None:
    until = world.clock.now() + timedelta(days=30)
    req = world.ask("alice", "ledger", line={"valid_until": until.isoformat()})
    _approve_all(world, req["id"])
    [held] = world.assignments("alice")
    dup = world.ask("alice", "ledger", status=409)
    assert dup["assignment_id"] == held["id"]
    assert dup["valid_until"].startswith(until.strftime("%Y-%m-%dT%H:%M"))

    world.clock.advance(timedelta(days=17))  # 13 days left, within the 14-day window
    ok = world.ask("alice", "ledger")
    assert ok["lines"][0]["decision"]["extends_assignment_id"] == held["id"]
    assert ok["lines"][0]["valid_from"] == held["valid_until"]
