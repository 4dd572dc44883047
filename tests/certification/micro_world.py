"""The micro-certification triggers' test world: H-loop's world (a memory target with VPN,
ERP-Read and ERP-Post; Alice, Bob and Carol report to Mia, Mia to Boss; Ada administers)
with the triggers run directly, the target aggregated for real, SoD rules and exceptions
made through the API, and reviewers deciding over HTTP as themselves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from certification.micro import MicroTriggers, run_micro_triggers
from certification.models import Campaign, ReviewItem
from connectors.memory import MemoryConnector
from idgov.db.session import unit_of_work
from idgov.models.application import Account
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.provisioning import ReconciliationRun
from idgov.reconciliation import service as reconciliation
from tests.certification.loop_world import ACTOR, Loop, loop_fixture
from tests.conftest import PersonHeaders

__all__ = ["Micro", "loop_fixture", "micro_fixture"]


@dataclass
class Micro:
    loop: Loop
    client: TestClient
    people: PersonHeaders
    admin: dict[str, str]

    @property
    def ids(self) -> dict[str, uuid.UUID]:
        return self.loop.ids

    @property
    def now(self) -> datetime:
        return self.loop.clock.now()

    def advance(self, **delta: float) -> None:
        self.loop.clock.advance(timedelta(**delta))

    # -- the job ------------------------------------------------------------------------------
    def run(self, *, sod: int = 0, unused: int = 0,
            aggregated: bool = False) -> dict[str, dict[str, int]]:
        with unit_of_work(self.loop.factory) as session:
            return run_micro_triggers(session, actor=ACTOR, clock=self.loop.clock,
                                      triggers=MicroTriggers(sod, unused, aggregated))

    def made(self, **triggers: Any) -> int:
        """How many items a run made, over every trigger."""
        return sum(c["items"] for c in self.run(**triggers).values())

    # -- rows ---------------------------------------------------------------------------------
    def items(self, trigger: str | None = None) -> list[ReviewItem]:
        """Micro items (of ``trigger``), oldest first."""
        with unit_of_work(self.loop.factory) as session:
            stmt = (select(ReviewItem).join(Campaign, Campaign.id == ReviewItem.campaign_id)
                    .where(Campaign.kind == "micro").order_by(ReviewItem.created_at))
            if trigger is not None:
                stmt = stmt.where(Campaign.trigger == trigger)
            found = list(session.scalars(stmt))
            session.expunge_all()
            return found

    def campaign(self, item: ReviewItem) -> Campaign:
        found: Campaign = self.loop.get(Campaign, item.campaign_id)
        return found

    def assignment(self, assignment_id: uuid.UUID) -> Assignment:
        found: Assignment = self.loop.get(Assignment, assignment_id)
        return found

    def create_context(self, campaign_id: uuid.UUID) -> dict[str, Any]:
        """The context of the campaign's ``campaign.create`` audit event."""
        with unit_of_work(self.loop.factory) as session:
            event = session.scalars(select(AuditEvent).where(
                AuditEvent.object_id == str(campaign_id),
                AuditEvent.action == "campaign.create")).one()
            return dict(event.context or {})

    def account(self, person: str) -> Account:
        with unit_of_work(self.loop.factory) as session:
            found = session.scalars(select(Account).where(
                Account.identity_id == self.ids[person],
                Account.application_id == self.loop.application_id)).one()
            session.expunge(found)
            return found

    # -- the target ---------------------------------------------------------------------------
    def signed_in(self, person: str, days_ago: float) -> datetime:
        """The person's account on the target was last signed in to ``days_ago`` days ago."""
        when = self.now - timedelta(days=days_ago)
        self.loop.env.target.set_last_sign_in(self.loop.env.account_of(person), when)
        return when

    def aggregate(self) -> ReconciliationRun:
        with unit_of_work(self.loop.factory) as session:
            run = reconciliation.aggregate(
                session, application_id=self.loop.application_id,
                connector=MemoryConnector(settings={"target": self.loop.env.target.name},
                                          credentials={}),
                actor=ACTOR, clock=self.loop.clock)
            session.expunge(run)
        assert run.state == "succeeded", run.error
        return run

    # -- HTTP ---------------------------------------------------------------------------------
    def call(self, method: str, url: str, who: str | None = None, **kwargs: Any) -> Any:
        headers = self.people[str(self.ids[who])] if who else self.admin
        return self.client.request(method, url, headers=headers, **kwargs)

    def decide(self, item: ReviewItem, decision: str, who: str,
               comment: str | None = None) -> Any:
        return self.call("POST", f"/certification/items/{item.id}/decision", who,
                         json={"decision": decision, "comment": comment})

    def sign_off(self, campaign_id: uuid.UUID, who: str) -> dict[str, Any]:
        response = self.call("POST", f"/certification/campaigns/{campaign_id}/sign-off", who)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def sod_rule(self, name: str, side_a: list[dict[str, str]],
                 side_b: list[dict[str, str]]) -> str:
        return str(self.loop.env.api.ok("POST", "/sod-rules", 201, json={
            "name": name, "side_a": side_a, "side_b": side_b})["id"])

    def exception(self, rule_id: str, person: str, *, approver: str,
                  expires_in_days: float) -> str:
        return str(self.loop.env.api.ok("POST", f"/sod-rules/{rule_id}/exceptions", 201, json={
            "identity_id": str(self.ids[person]), "approver_id": str(self.ids[approver]),
            "control": "monthly ledger reconciliation by Finance",
            "expires_at": (self.now + timedelta(days=expires_in_days)).isoformat()})["id"])

    def role(self, name: str, *entitlements: str) -> uuid.UUID:
        api = self.loop.env.api
        role_id = api.role(name)
        for entitlement in entitlements:
            api.grant(role_id, self.loop.env.ent[entitlement])
        return uuid.UUID(role_id)


def ent(micro: Micro, name: str) -> dict[str, str]:
    """A side item naming an entitlement of the world."""
    return {"entitlement_id": str(micro.loop.ent(name))}


@pytest.fixture(name="micro")
def micro_fixture(loop: Loop, client: TestClient, people: PersonHeaders,
                  admin_headers: dict[str, str]) -> Micro:
    return Micro(loop=loop, client=client, people=people, admin=admin_headers)
