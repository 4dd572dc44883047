"""The policy snapshot is reused while the catalog is unchanged, and never after a change.

Every change to roles, entitlements, composition links or SoD rules bumps the policy
revision in its own transaction; a link that starts or ends with time (no write at all)
also ends the reuse. A rolled-back change leaves the cache as it was.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from idgov.catalog.snapshot import current_snapshot
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.catalog import Entitlement, PolicyRevision, RoleEntitlement
from tests.catalog.factories import Api


def _snap(factory: sessionmaker[Session], clock: FixedClock):  # type: ignore[no-untyped-def]
    with factory() as session:
        return current_snapshot(session, at=clock.now())


def _revision(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        value = session.scalar(select(PolicyRevision.value))
        return int(value or 0)


def test_unchanged_catalog_gives_the_same_snapshot_and_a_change_a_new_one(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    role = api.role("Clerk")
    ledger = api.entitlement("Ledger")
    first = _snap(session_factory, clock)
    clock.advance(timedelta(minutes=5))
    assert _snap(session_factory, clock) is first

    api.grant(role, ledger)
    second = _snap(session_factory, clock)
    assert second is not first
    assert [e.entitlement_id for e in second.grants[uuid.UUID(role)]] == [uuid.UUID(ledger)]

    api.ok("PATCH", f"/entitlements/{ledger}", json={"risk": "critical"})
    third = _snap(session_factory, clock)
    assert third.entitlements[uuid.UUID(ledger)].risk == "critical"
    assert second.entitlements[uuid.UUID(ledger)].risk == "low"


@pytest.mark.parametrize("change", ["sod_rule", "end_link", "bulk_update"])
def test_every_kind_of_catalog_change_moves_the_revision(
        change: str, api: Api, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    role = api.role("Clerk")
    a, b = api.entitlement("A"), api.entitlement("B")
    api.grant(role, a)
    before = _revision(session_factory)
    if change == "sod_rule":
        api.ok("POST", "/sod-rules", 201, json={
            "name": "A and B", "side_a": [{"entitlement_id": a}],
            "side_b": [{"entitlement_id": b}]})
    elif change == "end_link":
        api.ok("DELETE", f"/roles/{role}/entitlements/{a}", 200, params={"reason": "gone"})
    else:
        with unit_of_work(session_factory) as session:
            session.execute(update(Entitlement).where(Entitlement.id == uuid.UUID(b))
                            .values(risk="high"))
    assert _revision(session_factory) > before


def test_a_link_starting_later_is_seen_once_its_time_comes_without_any_write(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    role = api.role("Clerk")
    ledger = api.entitlement("Ledger")
    starts = clock.now() + timedelta(days=1)
    api.ok("POST", f"/roles/{role}/entitlements", 201,
           json={"entitlement_id": ledger, "valid_from": starts.isoformat()})
    today = _snap(session_factory, clock)
    assert uuid.UUID(role) not in today.grants
    revision = _revision(session_factory)

    clock.advance(timedelta(days=1))
    tomorrow = _snap(session_factory, clock)
    assert _revision(session_factory) == revision
    assert [e.entitlement_id for e in tomorrow.grants[uuid.UUID(role)]] == [uuid.UUID(ledger)]


def test_uncommitted_changes_are_seen_by_their_session_only_and_never_cached(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    role = api.role("Clerk")
    ledger = api.entitlement("Ledger")
    cached = _snap(session_factory, clock)
    with session_factory() as session:
        session.add(RoleEntitlement(role_id=uuid.UUID(role), entitlement_id=uuid.UUID(ledger),
                                    valid_from=clock.now()))
        session.flush()
        inside = current_snapshot(session, at=clock.now())
        assert uuid.UUID(role) in inside.grants
        session.rollback()
    after = _snap(session_factory, clock)
    assert uuid.UUID(role) not in after.grants
    assert after is cached


def test_a_past_instant_is_built_afresh(api: Api, session_factory: sessionmaker[Session],
                                        clock: FixedClock) -> None:
    api.role("Clerk")
    now = _snap(session_factory, clock)
    with session_factory() as session:
        earlier = current_snapshot(session, at=clock.now() - timedelta(hours=1))
    assert earlier is not now
    assert earlier.as_of == clock.now() - timedelta(hours=1)
