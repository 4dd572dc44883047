"""The day-one world: the e2e story's organisation (Maria manages Jane; Otto has no manager;
Fay and Finn are the resolution group), its targets, and a joiner's operations recorded the
way the HR joiner path records them (create_account, then deliver_access due at the hire
start), run by the provisioning engine inline."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from connectors.memory import MemoryTarget
from idgov.dayone.endpoints import router
from idgov.dayone.service import record_day_one
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.audit import AuditEvent
from idgov.provisioning.accounts import ensure_account_operations
from idgov.types import Actor
from tests.conftest import START
from tests.e2e.conftest import (  # noqa: F401 - fixtures
    ENTRA_DOMAIN,
    KEYCLOAK_SECRET,
    Story,
    graph,
    graph_served,
    graph_story,
    keycloak,
    keycloak_served,
    keycloak_story,
    ldap_settings,
    pki,
    story,
)

HIRE = START + timedelta(days=3)
LINK = re.compile(r"(https?://\S+/day-one/#)([A-Za-z0-9_-]{40,})")


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The application with the day-one routes (until the composition root mounts them)."""
    if not any(str(getattr(r, "path", "")).startswith("/day-one") for r in app.routes):
        app.include_router(router)
    return app


@pytest.fixture(autouse=True)
def _memory_targets() -> Iterator[None]:
    MemoryTarget.forget_all()
    yield
    MemoryTarget.forget_all()


@dataclass
class DayOne:
    """Terse steps of the day-one stories over a :class:`Story`."""

    story: Story

    def memory_app(self, key: str, *capabilities: str) -> str:
        """A memory target (the API registers real kinds only: written as the engine's tests
        do), owned by Otto, failures to the support group."""
        settings: dict[str, Any] = {"target": key}
        if capabilities:
            settings["capabilities"] = ["create_account", "update_account", *capabilities]
        with unit_of_work(self.story.app.state.ctx.session_factory) as session:
            app = Application(name=f"App {key}", connector_kind="memory", settings=settings,
                              owner_id=uuid.UUID(self.story.ids["otto"]),
                              resolution_group_id=uuid.UUID(self.story.ids["support"]))
            session.add(app)
            session.flush()
            self.story.ids[key] = str(app.id)
        return self.story.ids[key]

    def join(self, who: str, *apps: str, not_before: datetime | None = HIRE,
             change: str | None = None) -> str:
        """What the joiner path records: each account's creation, then its day-one delivery."""
        cause_id = f"joiner:{change or uuid.uuid4()}"
        ctx = self.story.app.state.ctx
        actor = Actor.system("hr-feed")
        with unit_of_work(ctx.session_factory) as session:
            identity_id = uuid.UUID(self.story.ids[who])
            app_ids = [uuid.UUID(self.story.ids[a]) for a in apps]
            for app_id in app_ids:
                ensure_account_operations(session, identity_id=identity_id,
                                          application_id=app_id, cause="lifecycle",
                                          cause_id=cause_id, actor=actor,
                                          clock=self.story.clock)
            record_day_one(session, identity_id=identity_id, application_ids=app_ids,
                           not_before=not_before, cause_id=cause_id, actor=actor,
                           clock=self.story.clock)
        return cause_id

    def deliveries(self, app: str) -> list[dict[str, Any]]:
        return [o for o in self.story.operations(app) if o["action"] == "deliver_access"]

    def notifications(self, who: str, kind: str = "day_one.link") -> list[dict[str, Any]]:
        page = self.story.call("GET", "/me/notifications", who=who, params={"limit": 100})
        return [n for n in page["items"] if n["kind"] == kind]

    def token_for(self, manager: str = "maria") -> str:
        """The token of the link in the manager's (single) link message."""
        found = [LINK.search(n["body"]) for n in self.notifications(manager)]
        links = [m for m in found if m is not None]
        assert len(links) == 1, found
        return links[0].group(2)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.story.client.post(path, json=body)

    def audit_text(self) -> str:
        with self.story.app.state.ctx.session_factory() as session:
            return " ".join(f"{e.action} {(e.before, e.after, e.context, e.object_id)}"
                            for e in session.scalars(select(AuditEvent)))


@pytest.fixture
def day_one(story: Story) -> DayOne:  # noqa: F811 - the fixture
    return DayOne(story)
