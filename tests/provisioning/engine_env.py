"""A memory target behind an application, people to provision, and the engine to run
(shared by the engine tests)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.memory import MemoryTarget
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.identity import Group, GroupMember
from idgov.models.provisioning import ProvisioningOperation, TargetHealth
from idgov.provisioning.connections import ConnectorCache
from idgov.provisioning.engine import EngineConfig, RunStats, run_until_idle
from tests.catalog.factories import Api, add_identity

ENTITLEMENTS = ("VPN", "ERP-Read", "ERP-Post")


class FixedRandom(random.Random):
    """Jitter always lands at ``fraction`` of its range."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


@dataclass
class Env:
    api: Api
    factory: sessionmaker[Session]
    clock: FixedClock
    settings: Settings
    application_id: str
    target: MemoryTarget
    group_id: str
    members: list[str]
    ent: dict[str, str]
    person: dict[str, str]
    config: EngineConfig
    cache: ConnectorCache

    def run(self, **kwargs: Any) -> RunStats:
        kwargs.setdefault("config", self.config)
        return run_until_idle(self.factory, settings=self.settings, clock=self.clock,
                              connectors=self.cache, rng=FixedRandom(0.5), **kwargs)

    def assign(self, person: str, *entitlements: str, **extra: Any) -> list[str]:
        return [str(self.api.ok("POST", "/assignments", 201, json={
            "identity_id": self.person[person], "entitlement_id": self.ent[e],
            "reason": "test", **extra})["id"]) for e in entitlements]

    def ops(self, person: str | None = None) -> list[ProvisioningOperation]:
        """Operations in queue order."""
        with unit_of_work(self.factory) as session:
            stmt = select(ProvisioningOperation).order_by(ProvisioningOperation.ordinal,
                                                          ProvisioningOperation.created_at)
            if person is not None:
                stmt = stmt.where(ProvisioningOperation.identity_id
                                  == uuid.UUID(self.person[person]))
            return list(session.scalars(stmt))

    def states(self) -> dict[tuple[str, str, str], str]:
        """(person, action, entitlement or '-') -> state."""
        names = {v: k for k, v in self.person.items()}
        ents = {v: k for k, v in self.ent.items()}
        return {(names[str(o.identity_id)], o.action,
                 ents[str(o.entitlement_id)] if o.entitlement_id else "-"): o.state
                for o in self.ops()}

    def breaker(self) -> TargetHealth | None:
        with unit_of_work(self.factory) as session:
            return session.get(TargetHealth, uuid.UUID(self.application_id))

    def account_of(self, person: str) -> str:
        username = self.username(person)
        info = self.target.account(username)
        assert info is not None, f"no account {username}"
        return info.native_id

    def username(self, person: str) -> str:
        return f"t{person.lower()}"


def make_env(client: TestClient, admin_headers: dict[str, str],
             factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
             **app_extra: Any) -> Env:
    target_name = f"engine-{uuid.uuid4().hex[:8]}"
    person = {name: add_identity(factory, name.upper()) for name in ("Alice", "Bob", "Carol")}
    members = [add_identity(factory, f"OPS{i}") for i in (1, 2)]
    with unit_of_work(factory) as session:
        group = Group(name=f"Directory team {target_name}", kind="resolution")
        session.add(group)
        session.flush()
        for member in members:
            session.add(GroupMember(group_id=group.id, identity_id=uuid.UUID(member)))
        app = Application(name=f"Directory {target_name}", connector_kind="memory",
                          settings={"target": target_name}, resolution_group_id=group.id,
                          **app_extra)
        session.add(app)
        session.flush()
        application_id, group_id = str(app.id), str(group.id)
    api = Api(client, admin_headers, application_id)
    target = MemoryTarget.get(target_name)
    ent = {}
    for name in ENTITLEMENTS:
        ent[name] = api.entitlement(name)
        target.add_entitlement(f"cn={name}", name)
    config = EngineConfig(retry_base_seconds=30, retry_cap_seconds=3600, max_attempts=4,
                          breaker_threshold=3, breaker_cooldown_seconds=60, lease_seconds=300,
                          batch_size=10)
    return Env(api=api, factory=factory, clock=clock, settings=settings,
               application_id=application_id, target=target, group_id=group_id,
               members=members, ent=ent, person=person, config=config, cache=ConnectorCache())


@pytest.fixture(name="env")
def env_fixture(client: TestClient, admin_headers: dict[str, str],
                session_factory: sessionmaker[Session], clock: FixedClock,
                settings: Settings) -> Iterator[Env]:
    env = make_env(client, admin_headers, session_factory, clock, settings)
    yield env
    env.cache.close()
    MemoryTarget.forget_all()


def at(clock: FixedClock, **delta: float) -> datetime:
    from datetime import timedelta
    return clock.now() + timedelta(**delta)
