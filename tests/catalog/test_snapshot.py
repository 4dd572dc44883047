"""build_snapshot: the catalog as policy sees it at an instant, from the database."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from idgov.catalog.snapshot import build_snapshot
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.policy.expansion import expand
from idgov.policy.snapshot import ItemRef
from tests.catalog.factories import Api


def test_snapshot_holds_links_valid_at_the_instant_and_rules_with_sides(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    clerk, ap = api.role("Finance Clerk"), api.role("AP Processor", kind="technical")
    ap_write, vendor = api.entitlement("ap-write"), api.entitlement("vendor-write")
    link = api.include(clerk, ap)
    api.grant(ap, ap_write)
    rule = api.ok("POST", "/sod-rules", 201, json={
        "name": "AP vs vendor", "side_a": [{"role_id": ap}],
        "side_b": [{"entitlement_id": vendor}], "enabled": False})
    start = clock.now()
    clock.advance(timedelta(days=2))
    api.ok("DELETE", f"/roles/{clerk}/included-roles/{ap}", params={"reason": "split"})

    with unit_of_work(session_factory) as session:
        during = build_snapshot(session, as_of=start + timedelta(days=1))
        after = build_snapshot(session, as_of=clock.now())
        before = build_snapshot(session, as_of=start - timedelta(seconds=1))

    assert [(e.parent_id, e.child_id, e.link_id) for e in during.inclusions] == [
        (uuid.UUID(clerk), uuid.UUID(ap), uuid.UUID(link["id"]))]
    assert after.inclusions == ()
    assert (before.inclusions, before.role_entitlements) == ((), ())
    assert [" -> ".join(s.name for s in p)
            for p in expand(during, uuid.UUID(clerk))[uuid.UUID(ap_write)]] == [
        "Finance Clerk -> AP Processor -> ap-write"]
    assert uuid.UUID(ap_write) not in expand(after, uuid.UUID(clerk))
    (spec,) = during.sod_rules
    assert (spec.id, spec.enabled) == (uuid.UUID(rule["id"]), False)
    assert spec.side_a == frozenset({ItemRef("role", uuid.UUID(ap))})
    assert spec.side_b == frozenset({ItemRef("entitlement", uuid.UUID(vendor))})
    assert during.version != after.version
    assert during.entitlements[uuid.UUID(ap_write)].native_id == "cn=ap-write"
