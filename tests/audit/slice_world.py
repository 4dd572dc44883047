"""A small audit trail for the slice tests, written through the real sealer.

Eight events in four signed blocks (seq as on a fresh database; tests that create API tokens
first see them shifted, so they compare object ids and actions, not seq):

    block  seq  occurred_at  action      object
    A      1    T0           door.open   d1
    A      2    T0           door.open   d2
    A      3    T0           door.close  d1     signed
    B      4    T0+1h        door.close  d2
    B      5    T0+1h10m     door.open   d3     signed
    S      6    T0+30m       door.open   d9     signed  (recorded at 30m, committed after B)
    C      7    T0+2h        door.open   d1
    C      8    T0+2h        door.close  d3     signed
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.service import record
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.types import Actor
from tests.conftest import START

GUARD = Actor.system("door-guard")


def _door(session: Session, clock: FixedClock, action: str, door: str) -> None:
    record(session, actor=GUARD, action=f"door.{action}", object_type="door", object_id=door,
           clock=clock, after={"state": action, "note": "café"}, context={"site": "north"})


def build_world(factory: sessionmaker[Session], clock: FixedClock) -> None:
    clock.set(START)
    with unit_of_work(factory) as a:
        _door(a, clock, "open", "d1")
        _door(a, clock, "open", "d2")
        _door(a, clock, "close", "d1")
    late = factory()
    try:
        clock.set(START + timedelta(minutes=30))
        _door(late, clock, "open", "d9")
        clock.set(START + timedelta(hours=1))
        with unit_of_work(factory) as b:
            _door(b, clock, "close", "d2")
            clock.advance(timedelta(minutes=10))
            _door(b, clock, "open", "d3")
        late.commit()
    finally:
        late.close()
    clock.set(START + timedelta(hours=2))
    with unit_of_work(factory) as c:
        _door(c, clock, "open", "d1")
        _door(c, clock, "close", "d3")


def parse(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


def shape(data: bytes) -> list[tuple[str, str, str]]:
    """(object id, action, role) of every event line."""
    return [(o["record"]["object_id"], o["record"]["action"], o["role"])
            for o in parse(data) if o["type"] == "event"]
