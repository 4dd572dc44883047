"""Micro-certification of access found by aggregation: memberships nobody granted through
the service become ``aggregation`` assignments, which go to the holder's manager (else the
application's owner) to confirm or revoke, once."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from certification.models import Campaign
from certification.tasks import micro_job
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.identity import Identity
from tests.certification.loop_world import ACTOR
from tests.certification.micro_world import Micro, loop_fixture, micro_fixture

__all__ = ["loop_fixture", "micro_fixture"]

AGGREGATED = {"aggregated": True}


def _found_on_target(micro: Micro, *people: str, entitlement: str = "ERP-Post") -> None:
    """Accounts of ``people`` (correlated by employee number) exist on the target as
    members of ``entitlement``, granted by nobody."""
    target = micro.loop.env.target
    for person in people:
        ref = target.add_account(f"x{person.lower()}", {"employeeNumber": person.upper()})
        target.add_member(f"cn={entitlement}", ref.native_id)
    orphan = target.add_account("svc-batch", {"employeeNumber": "NOBODY"})
    target.add_member(f"cn={entitlement}", orphan.native_id)


def _aggregated(micro: Micro) -> dict[str, uuid.UUID]:
    with unit_of_work(micro.loop.factory) as session:
        rows = session.execute(select(Assignment.identity_id, Assignment.id).where(
            Assignment.source == "aggregation"))
        names = {v: k for k, v in micro.ids.items()}
        return {names[i]: a for i, a in rows}


def test_aggregated_access_goes_to_the_manager_and_a_revoke_removes_it(micro: Micro) -> None:
    _found_on_target(micro, "Alice", "Bob")
    micro.loop.update(Identity, micro.ids["Bob"], manager_id=None)
    micro.loop.update(Application, micro.loop.application_id, owner_id=micro.ids["Boss"])
    run = micro.aggregate()
    assert run.counts["assignments_created"] == 2
    held = _aggregated(micro)

    report = micro.run(**AGGREGATED)

    assert report["aggregation"] == {"items": 2, "campaigns": 2, "under_review": 0,
                                     "ended": 0, "no_reviewer": 0}
    items = {i.identity_id: i for i in micro.items("aggregation")}
    alice, bob = items[micro.ids["Alice"]], items[micro.ids["Bob"]]
    assert (alice.assignment_id, alice.reviewer_id, alice.trigger_key, alice.source) == (
        held["Alice"], micro.ids["Mia"], f"aggregation:{held['Alice']}", "aggregation")
    assert (bob.reviewer_id, bob.context["reviewer_rule"]) == (micro.ids["Boss"],
                                                               "application_owner")
    campaign = micro.campaign(alice)
    assert (campaign.trigger, campaign.name.startswith("Review of access found on a target "
                                                       "for ")) == ("aggregation", True)
    assert len(micro.loop.notes("Mia", "certification.micro")) == 1
    assert micro.made(**AGGREGATED) == 0
    micro.aggregate()  # aggregating again finds the same access: nothing new to review
    assert micro.made(**AGGREGATED) == 0

    assert micro.decide(alice, "revoke", "Mia", comment="not hers").status_code == 200
    assert micro.decide(bob, "certify", "Boss").status_code == 200
    micro.sign_off(alice.campaign_id, "Mia")
    micro.sign_off(bob.campaign_id, "Boss")
    assert micro.assignment(held["Alice"]).revoked_at == micro.now
    assert micro.assignment(held["Bob"]).last_certified_at == micro.now
    micro.loop.provision()
    assert micro.loop.members_of("ERP-Post") == {"xbob", "svc-batch"}


def test_access_under_review_elsewhere_waits_and_certified_access_is_left_alone(
        micro: Micro) -> None:
    _found_on_target(micro, "Alice", "Bob")
    micro.aggregate()
    held = _aggregated(micro)
    micro.loop.update(Assignment, held["Bob"], last_certified_at=micro.now,
                      last_certified_by="identity:Mia")
    quarterly = micro.loop.campaign()
    micro.loop.item(quarterly, held["Alice"])  # pending in an active manager campaign

    assert micro.run(**AGGREGATED)["aggregation"] == {
        "items": 0, "campaigns": 0, "under_review": 1, "ended": 0, "no_reviewer": 0}

    micro.loop.update(Campaign, quarterly, state="cancelled")
    assert micro.made(**AGGREGATED) == 1
    assert [i.assignment_id for i in micro.items("aggregation")] == [held["Alice"]]


def test_the_job_runs_the_triggers_its_settings_enable(micro: Micro, settings: Settings
                                                       ) -> None:
    _found_on_target(micro, "Alice")
    micro.aggregate()
    off = settings.model_copy(update={"cert_review_aggregated": False})

    assert micro_job(micro.loop.factory, off, micro.loop.clock, ACTOR) == 0
    assert micro_job(micro.loop.factory, settings, micro.loop.clock, ACTOR) == 1
    assert micro_job(micro.loop.factory, settings, micro.loop.clock, ACTOR) == 0
    assert [i.trigger_key for i in micro.items()] == [
        f"aggregation:{_aggregated(micro)['Alice']}"]


def test_a_micro_review_does_not_block_a_manager_campaign_but_another_campaign_does(
        micro: Micro) -> None:
    _found_on_target(micro, "Alice")
    micro.aggregate()
    assert micro.made(**AGGREGATED) == 1  # Alice's found access: a micro review, open

    def launch(name: str) -> int:
        body = {"name": name, "kind": "manager",
                "scope": {"identity_ids": [str(micro.ids["Alice"])]},
                "deadline_at": (micro.now + timedelta(days=14)).isoformat()}
        made = micro.client.post("/certification/campaigns", json=body, headers=micro.admin)
        assert made.status_code == 201, made.text
        return micro.client.post(f"/certification/campaigns/{made.json()['id']}/launch",
                                 headers=micro.admin).status_code

    assert launch("Quarterly review") == 200
    assert launch("Second review") == 409
