"""A month of access history at a small finance department, made through the services with
a clock the test moves: grants, a time-bound grant that expires, a revocation, a role
composition change (an entitlement added to a role and removed again, an inclusion ended)
and a leaver.

Catalog (all from T0): role "AP Manager" (business) grants ledger-read and includes
"Payments Approver" (technical), which grants vendor-payments-approve (high, privileged).

| when (UTC)        | what |
| ----------------- | ---- |
| 2026-02-01 08:00  | T0: catalog; E1 Alice and E4 Dan get AP Manager (admin); E2 Bob gets |
|                   | vendor-payments-approve directly until 2026-03-01 08:00 |
| 2026-02-10 10:00  | E3 Carol gets vendor-payments-approve directly |
| 2026-02-15 12:00  | Payments Approver also grants vendor-master-edit |
| 2026-02-20 12:00  | ... and no longer does |
| 2026-02-25 09:00  | Carol's grant is revoked |
| 2026-02-27 17:00  | Dan leaves: terminated, his assignments end |
| 2026-03-01 08:30  | Bob's grant is swept as expired (it ended at 08:00) |
| 2026-03-05 10:00  | AP Manager no longer includes Payments Approver |
| 2026-03-10 09:00  | now |
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from idgov.assignments import service as assignments
from idgov.catalog import composition
from idgov.catalog import service as catalog
from idgov.catalog.schemas import (
    EntitlementCreate,
    InclusionCreate,
    RoleCreate,
    RoleEntitlementCreate,
)
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.lifecycle import events
from idgov.models.application import Application
from idgov.types import Actor
from tests.catalog.factories import new_identity

ADMIN = Actor.system("report-tests")


def at(day: int, hour: int, minute: int = 0, month: int = 2) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


T0 = at(1, 8)
NOW = at(10, 9, month=3)


@dataclass
class World:
    ids: dict[str, uuid.UUID] = field(default_factory=dict)


def build_history(factory: sessionmaker[Session], clock: FixedClock) -> World:
    """Play the month above; the clock ends at NOW."""
    world = World()
    ids = world.ids
    clock.set(T0)
    with unit_of_work(factory) as s:
        app = Application(name="Finance ERP", connector_kind="manual", settings={})
        s.add(app)
        s.flush()
        manager = new_identity(s, "M1", given_name="Maria", family_name="Boss",
                               department="Finance")
        for key, given in (("E1", "Alice"), ("E2", "Bob"), ("E3", "Carol"), ("E4", "Dan")):
            ids[key] = new_identity(s, key, given_name=given, family_name="Clerk",
                                    manager_id=manager.id, department="Finance").id

        def entitlement(name: str, **extra: object) -> uuid.UUID:
            return catalog.create_entitlement(s, entitlement_in=EntitlementCreate(
                application_id=app.id, native_id=f"cn={name}", name=name, **extra),
                actor=ADMIN, clock=clock).id

        ids["ledger"] = entitlement("ledger-read")
        ids["pay"] = entitlement("vendor-payments-approve", risk="high", privileged=True)
        ids["master"] = entitlement("vendor-master-edit", risk="medium")
        ids["apm"] = catalog.create_role(s, role_in=RoleCreate(name="AP Manager"),
                                         actor=ADMIN, clock=clock).id
        ids["approver"] = catalog.create_role(
            s, role_in=RoleCreate(name="Payments Approver", kind="technical"), actor=ADMIN,
            clock=clock).id
        composition.add_entitlement(s, role_id=ids["apm"], link_in=RoleEntitlementCreate(
            entitlement_id=ids["ledger"]), actor=ADMIN, clock=clock)
        composition.add_entitlement(s, role_id=ids["approver"], link_in=RoleEntitlementCreate(
            entitlement_id=ids["pay"]), actor=ADMIN, clock=clock)
        composition.include_role(s, role_id=ids["apm"], inclusion_in=InclusionCreate(
            role_id=ids["approver"]), actor=ADMIN, clock=clock)
        for who in ("E1", "E4"):
            ids[f"{who}-apm"] = assignments.grant(
                s, identity_id=ids[who], role_id=ids["apm"], source="admin",
                reason="accounts payable lead", valid_from=None, valid_until=None,
                actor=ADMIN, clock=clock).id
        ids["E2-pay"] = assignments.grant(
            s, identity_id=ids["E2"], entitlement_id=ids["pay"], source="admin",
            reason="cover for February", valid_from=None, valid_until=at(1, 8, month=3),
            actor=ADMIN, clock=clock).id

    with unit_of_work(factory) as s:
        clock.set(at(10, 10))
        ids["E3-pay"] = assignments.grant(
            s, identity_id=ids["E3"], entitlement_id=ids["pay"], source="admin",
            reason="payments team", valid_from=None, valid_until=None, actor=ADMIN,
            clock=clock).id
    with unit_of_work(factory) as s:
        clock.set(at(15, 12))
        composition.add_entitlement(s, role_id=ids["approver"], link_in=RoleEntitlementCreate(
            entitlement_id=ids["master"]), actor=ADMIN, clock=clock)
    with unit_of_work(factory) as s:
        clock.set(at(20, 12))
        composition.end_entitlement(s, role_id=ids["approver"], entitlement_id=ids["master"],
                                    reason="moved to vendor management", actor=ADMIN,
                                    clock=clock)
    with unit_of_work(factory) as s:
        clock.set(at(25, 9))
        assignments.revoke(s, assignment_id=ids["E3-pay"], reason="left the payments team",
                           actor=ADMIN, clock=clock)
    with unit_of_work(factory) as s:
        clock.set(at(27, 17))
        events.terminate(s, identity_id=ids["E4"], reason="resigned",
                         retention=timedelta(days=30), actor=ADMIN, clock=clock)
    with unit_of_work(factory) as s:
        clock.set(at(1, 8, 30, month=3))
        assignments.expire(s, assignment_id=ids["E2-pay"], actor=ADMIN, clock=clock)
    with unit_of_work(factory) as s:
        clock.set(at(5, 10, month=3))
        composition.end_inclusion(s, role_id=ids["apm"], child_role_id=ids["approver"],
                                  reason="reorganisation", actor=ADMIN, clock=clock)
    clock.set(NOW)
    return world
