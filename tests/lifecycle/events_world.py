"""A memory target with people, a manager chain and helpers to terminate, reinstate and run
due lifecycle events (shared by the lifecycle event, handover and review flag tests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.memory import MemoryTarget
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.lifecycle import events
from idgov.models.application import Account
from idgov.models.hr import LifecycleEvent
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.types import Actor
from tests.catalog.factories import add_identity
from tests.provisioning.engine_env import Env, make_env

ACTOR = Actor.system("tests")
RETENTION = timedelta(days=30)


@dataclass
class Life:
    """``env`` holds Alice, Bob, Carol on a memory target (entitlements VPN, ERP-Read,
    ERP-Post). Alice reports to Mia, Mia to Boss."""

    env: Env
    ids: dict[str, uuid.UUID]

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.env.factory

    @property
    def clock(self) -> FixedClock:
        return self.env.clock

    def terminate(self, name: str, retention: timedelta = RETENTION) -> None:
        with unit_of_work(self.factory) as session:
            events.terminate(session, identity_id=self.ids[name], reason="resigned",
                             retention=retention, actor=ACTOR, clock=self.clock)

    def process_due(self) -> int:
        with unit_of_work(self.factory) as session:
            return events.process_due(session, actor=ACTOR, clock=self.clock)

    def state(self, name: str) -> str:
        with unit_of_work(self.factory) as session:
            identity = session.get(Identity, self.ids[name])
            assert identity is not None
            return identity.lifecycle_state

    def set(self, name: str, **values: Any) -> None:
        with unit_of_work(self.factory) as session:
            identity = session.get(Identity, self.ids[name])
            assert identity is not None
            for key, value in values.items():
                setattr(identity, key, value)

    def events(self, name: str) -> list[LifecycleEvent]:
        with unit_of_work(self.factory) as session:
            found = list(session.scalars(
                select(LifecycleEvent).where(LifecycleEvent.identity_id == self.ids[name])
                .order_by(LifecycleEvent.created_at, LifecycleEvent.due_at)))
            session.expunge_all()
            return found

    def ops(self, name: str, **where: object) -> list[ProvisioningOperation]:
        """The person's operations in queue order, optionally filtered by column values."""
        return [op for op in self.env.ops(name)
                if all(getattr(op, k) == v for k, v in where.items())]

    def accounts(self, name: str) -> list[Account]:
        with unit_of_work(self.factory) as session:
            found = list(session.scalars(select(Account)
                                         .where(Account.identity_id == self.ids[name])))
            session.expunge_all()
            return found


@pytest.fixture(name="life")
def life_fixture(client: TestClient, admin_headers: dict[str, str],
                 session_factory: sessionmaker[Session], clock: FixedClock,
                 settings: Settings) -> Iterator[Life]:
    env = make_env(client, admin_headers, session_factory, clock, settings)
    ids = {name: uuid.UUID(i) for name, i in env.person.items()}
    ids["Boss"] = uuid.UUID(add_identity(session_factory, "BOSS"))
    ids["Mia"] = uuid.UUID(add_identity(session_factory, "MIA", manager_id=str(ids["Boss"])))
    life = Life(env=env, ids=ids)
    life.set("Alice", manager_id=ids["Mia"])
    yield life
    env.cache.close()
    MemoryTarget.forget_all()
