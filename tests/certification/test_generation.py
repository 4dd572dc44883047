"""Generation on both backends: one item per assignment in force in scope, the reviewer
rule with its fallbacks, nobody reviewing their own access, the snapshot, overlap, context."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from certification import campaigns
from certification.models import Campaign, ReviewItem
from idgov.db.session import unit_of_work
from idgov.errors import Conflict
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.identity import Identity
from tests.certification.gen_world import ACTOR, World, world

__all__ = ["world"]


@pytest.fixture
def org(world: World) -> World:
    """Boss manages Mia; Mia manages Ann and Bob; Cy has no manager; an ERP with owner Olga."""
    for name, manager in (("Boss", None), ("Mia", "Boss"), ("Ann", "Mia"), ("Bob", "Mia"),
                          ("Cy", None), ("Olga", None)):
        world.person(name, manager)
    world.app("ERP", owner="Olga")
    world.app("CRM", owner="Olga")
    world.ent("ERP-Read", "ERP", owner="Olga")
    world.ent("ERP-Pay", "ERP", risk="high", privileged=True, owner="Olga")
    world.ent("CRM-User", "CRM", risk="medium", owner="Mia")
    world.role("Clerk", "ERP-Read", "ERP-Pay", owner="Olga")
    return world


def test_a_manager_campaign_has_one_item_per_assignment_in_force_reviewed_by_the_manager(
        org: World) -> None:
    now = org.clock.now()
    ann_read = org.assign("Ann", "ERP-Read")
    bob_clerk = org.assign("Bob", "Clerk", source="birthright")
    org.assign("Ann", "CRM-User", revoked_at=now - timedelta(days=1))  # ended
    org.assign("Bob", "CRM-User", valid_from=now + timedelta(days=2))  # not yet
    org.assign("Ann", "ERP-Pay", valid_until=now - timedelta(hours=1))  # expired

    campaign = org.campaign()

    items = org.by_assignment(campaign.id)
    assert set(items) == {ann_read, bob_clerk}
    assert {i.reviewer_id for i in items.values()} == {org.ids["Mia"]}
    assert items[ann_read].original_reviewer_id == org.ids["Mia"]
    clerk = items[bob_clerk]
    # A role: the highest risk it reaches, privileged when anything it reaches is, and the
    # application when everything it reaches lies in one.
    assert (clerk.role_id, clerk.risk, clerk.privileged, clerk.application_id) == (
        org.ids["Clerk"], "high", True, org.ids["ERP"])
    assert (clerk.source, clerk.decision, clerk.remediation) == ("birthright", "pending", "none")
    assert campaign.state == "active" and campaign.generated_at == now
    assert campaign.counts["items"] == 2 and campaign.counts["reviewers"] == 1
    assert campaign.counts["by_rule"] == {"manager": 2}
    assert len(campaign.counts["items_digest"]) == 64


def test_fallbacks_run_in_order_and_skip_inactive_reviewers(org: World) -> None:
    org.person("Dan", "Mia")
    org.group("Reviewers", "Boss")
    cy = org.assign("Cy", "ERP-Read")  # no manager: manager_of_manager impossible -> owner
    cy_crm = org.assign("Cy", "CRM-User")  # owner Mia
    dan = org.assign("Dan", "ERP-Read")  # manager Mia is suspended below -> Boss
    org.update(Identity, org.ids["Mia"], lifecycle_state="suspended")

    campaign = org.campaign(fallbacks=["manager_of_manager", "owner", "group"],
                            fallback_group_id=str(org.ids["Reviewers"]))

    items = org.by_assignment(campaign.id)
    assert (items[dan].reviewer_id, items[dan].context["reviewer_rule"]) == (
        org.ids["Boss"], "manager_of_manager")
    assert (items[cy].reviewer_id, items[cy].context["reviewer_rule"]) == (
        org.ids["Olga"], "owner")
    # CRM-User's owner is Mia (suspended): the group reviews.
    assert (items[cy_crm].reviewer_id, items[cy_crm].reviewer_group_id) == (
        None, org.ids["Reviewers"])
    assert campaign.counts["reviewer_groups"] == 1


def test_nobody_reviews_their_own_access(org: World) -> None:
    olga = org.assign("Olga", "ERP-Read")  # the owner holds what she owns
    mia = org.assign("Mia", "CRM-User")
    org.group("Auditors", "Boss")

    owner_review = org.campaign("owners", kind="owner", fallbacks=["manager", "group"],
                                fallback_group_id=str(org.ids["Auditors"]))

    items = org.by_assignment(owner_review.id)
    assert items[olga].reviewer_id is None  # Olga has no manager: the group
    assert items[olga].reviewer_group_id == org.ids["Auditors"]
    assert items[mia].reviewer_id == org.ids["Boss"]  # Mia's own item goes to her manager
    assert all(i.reviewer_id != i.identity_id for i in items.values())


def test_an_item_without_any_reviewer_is_counted_unresolved(org: World) -> None:
    org.assign("Cy", "ERP-Read")
    campaign = org.campaign()
    [item] = org.items(campaign.id)
    assert (item.reviewer_id, item.reviewer_group_id) == (None, None)
    assert campaign.counts["unresolved"] == 1


def test_items_are_a_snapshot_later_grants_and_revocations_do_not_move_them(
        org: World) -> None:
    kept = org.assign("Ann", "ERP-Read")
    campaign = org.campaign()
    org.clock.advance(timedelta(hours=1))
    org.assign("Bob", "ERP-Read")  # granted after launch
    org.update(Assignment, kept, revoked_at=org.clock.now())  # revoked after launch

    assert set(org.by_assignment(campaign.id)) == {kept}


def test_scope_filters_applications_risk_departments_and_sources(org: World) -> None:
    org.person("Eve", "Mia", department="Sales")
    ann_pay = org.assign("Ann", "ERP-Pay")
    ann_crm = org.assign("Ann", "CRM-User", source="request")
    bob_clerk = org.assign("Bob", "Clerk")
    eve_pay = org.assign("Eve", "ERP-Pay")

    def scoped(name: str, **scope: object) -> set[object]:
        made = org.campaign(name, scope=scope)
        with unit_of_work(org.factory) as session:  # one active campaign at a time here
            campaigns.cancel_campaign(session, campaign_id=made.id, reason=None, actor=ACTOR,
                                      clock=org.clock)
        return set(org.by_assignment(made.id))

    assert scoped("crm", application_ids=[str(org.ids["CRM"])]) == {ann_crm}
    assert scoped("erp", application_ids=[str(org.ids["ERP"])]) == {ann_pay, bob_clerk,
                                                                     eve_pay}
    assert scoped("high", min_risk="high") == {ann_pay, bob_clerk, eve_pay}
    assert scoped("sales", departments=["Sales"]) == {eve_pay}
    assert scoped("requested", sources=["request"]) == {ann_crm}
    assert scoped("role", role_ids=[str(org.ids["Clerk"])]) == {bob_clerk}
    assert scoped("people", identity_ids=[str(org.ids["Ann"])]) == {ann_pay, ann_crm}
    privileged = org.campaign("privileged", kind="privileged")
    assert set(org.by_assignment(privileged.id)) == {ann_pay, bob_clerk, eve_pay}


def test_an_overlapping_launch_is_refused_and_creates_nothing(org: World) -> None:
    org.assign("Ann", "ERP-Read")
    first = org.campaign("first")
    second = org.campaign("second", launch=False, scope={"identity_ids": [str(org.ids["Ann"])]})

    with pytest.raises(Conflict, match="first"), unit_of_work(org.factory) as session:
        campaigns.launch(session, campaign_id=second.id, actor=ACTOR, clock=org.clock)

    with org.factory() as session:
        assert session.get(Campaign, second.id).state == "draft"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(ReviewItem).where(
            ReviewItem.campaign_id == second.id)) == 0
    # Once the first is cancelled, the second may launch.
    with unit_of_work(org.factory) as session:
        campaigns.cancel_campaign(session, campaign_id=first.id, reason="redo", actor=ACTOR,
                                  clock=org.clock)
        assert campaigns.launch(session, campaign_id=second.id, actor=ACTOR,
                                clock=org.clock).counts["items"] == 1


def test_item_context_tells_how_it_was_granted_and_what_it_amounts_to(org: World) -> None:
    for name in ("Ivy", "Jo", "Kim"):
        org.person(name, "Mia")  # Ann's peers: Finance / ACC
    requested = org.requested("Ann", "ERP-Read", approver="Mia")
    for peer in ("Ivy", "Jo"):
        org.assign(peer, "ERP-Read")
    org.update(Assignment, requested, last_certified_at=org.clock.now() - timedelta(days=90),
               last_certified_by="identity:Mia")
    pay = org.assign("Ann", "ERP-Pay")
    crm = org.assign("Ann", "CRM-User")
    org.sod_rule("Pay vs CRM", "ERP-Pay", "CRM-User")
    org.account("Ann", "ERP", last_sign_in="2026-01-10T08:00:00+00:00")

    campaign = org.campaign()

    items = org.by_assignment(campaign.id)
    context = items[requested].context
    assert context["item"] == {"type": "entitlement", "name": "ERP-Read"}
    assert context["granted"]["source"] == "request"
    assert (context["granted"]["request"], context["granted"]["line"]) == (
        "REQ-2026-000042", "RITM-2026-000043")
    assert [a["name"] for a in context["granted"]["approvers"]] == ["Mia"]
    assert context["last_certified"]["by"] == "identity:Mia"
    assert context["peers"] == {"peers": 8, "holding": 2, "share": 0.25}  # all in Finance ACC
    assert context["last_sign_in"] == "2026-01-10T08:00:00+00:00"
    assert context["sod"] == [] and items[requested].sod_conflict is False
    for conflicting in (pay, crm):
        assert items[conflicting].sod_conflict is True
        assert items[conflicting].context["sod"][0]["rule"] == "Pay vs CRM"
    assert (items[pay].risk, items[pay].privileged) == ("high", True)
    assert campaign.counts["sod_conflicts"] == 2


def test_the_launch_is_one_signed_audit_event_with_the_counts(org: World) -> None:
    org.assign("Ann", "ERP-Read")
    org.assign("Bob", "ERP-Read")
    campaign = org.campaign()
    with org.factory() as session:
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == str(campaign.id)).order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == ["campaign.create", "campaign.launch"]
    launch = events[-1]
    assert launch.before["state"] == "draft"  # type: ignore[index]
    assert launch.after["counts"]["items"] == 2  # type: ignore[index]
    assert launch.hash is not None
