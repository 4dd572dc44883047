"""Micro-certification before an SoD exception expires: the holder's conflicting access goes
to their manager (else the approver), once per exception and expiry, with the conflict
flagged so that keeping it needs a comment."""

from __future__ import annotations

import uuid
from datetime import timedelta

from idgov.models.catalog import SodException
from idgov.models.identity import Identity
from tests.certification.micro_world import Micro, ent, loop_fixture, micro_fixture

__all__ = ["loop_fixture", "micro_fixture"]

SOD = {"sod": 14}


def _poster_and_reader(micro: Micro, person: str = "Alice") -> dict[str, object]:
    """``person`` holds ERP-Read (side B), the role Poster (reaches ERP-Post, side A), VPN."""
    poster = micro.role(f"Poster {person}", "ERP-Post")
    return {"read": micro.loop.grant(person, "ERP-Read"),
            "poster": micro.loop.grant(person, role_id=poster),
            "vpn": micro.loop.grant(person, "VPN")}


def _rule(micro: Micro) -> str:
    return micro.sod_rule("Post vs read", [ent(micro, "ERP-Post")], [ent(micro, "ERP-Read")])


def test_an_expiring_exception_opens_a_review_of_both_sides_for_the_manager(
        micro: Micro) -> None:
    held = _poster_and_reader(micro)
    rule = _rule(micro)
    exception = micro.exception(rule, "Alice", approver="Ada", expires_in_days=10)

    report = micro.run(**SOD)
    assert report["sod_exception"] == {"items": 2, "campaigns": 1, "under_review": 0,
                                       "ended": 0, "no_reviewer": 0}
    assert micro.made(**SOD) == 0  # the same event: covered

    items = micro.items("sod_exception")
    assert {i.assignment_id for i in items} == {held["read"], held["poster"]}
    assert {(i.reviewer_id, i.sod_conflict) for i in items} == {(micro.ids["Mia"], True)}
    expires = (micro.now + timedelta(days=10)).isoformat()
    assert {i.trigger_key for i in items} == {
        f"sod_exception:{exception}:{expires}:{held['read']}",
        f"sod_exception:{exception}:{expires}:{held['poster']}"}
    by_assignment = {i.assignment_id: i for i in items}
    assert by_assignment[held["poster"]].context["sod_side"] == "a"
    assert by_assignment[held["read"]].context["sod_side"] == "b"
    assert by_assignment[held["read"]].context["sod_exception"] == {
        "id": exception, "rule_id": rule, "rule": "Post vs read",
        "control": "monthly ledger reconciliation by Finance", "expires_at": expires,
        "approver_id": str(micro.ids["Ada"])}
    campaign = micro.campaign(items[0])
    assert (campaign.kind, campaign.state, campaign.trigger, campaign.trigger_ref,
            campaign.deadline_action, campaign.reminder_days) == (
        "micro", "active", "sod_exception", exception, "escalate", [3])
    assert campaign.deadline_at == micro.now + timedelta(days=14)
    assert "expires within 14 days" in (campaign.description or "")
    [note] = micro.loop.notes("Mia", "certification.micro")
    assert "role Poster Alice" in note.body and "entitlement ERP-Read" in note.body
    assert micro.create_context(campaign.id) == {
        "trigger": "sod_exception", "items": 2, "reviewer_id": str(micro.ids["Mia"]),
        "refs": [exception]}


def test_only_exceptions_in_force_expiring_soon_with_the_conflict_held_are_reviewed(
        micro: Micro) -> None:
    _poster_and_reader(micro, "Alice")
    _poster_and_reader(micro, "Bob")
    micro.loop.grant("Carol", "ERP-Read")  # one side only: no conflict
    rule = _rule(micro)
    micro.exception(rule, "Alice", approver="Ada", expires_in_days=20)  # not yet
    revoked = micro.exception(rule, "Bob", approver="Ada", expires_in_days=5)
    micro.loop.env.api.ok("POST", f"/sod-rules/{rule}/exceptions/{revoked}/revoke",
                          json={"reason": "Bob gave up posting"})
    micro.exception(rule, "Carol", approver="Ada", expires_in_days=5)

    assert micro.made(**SOD) == 0

    micro.advance(days=6)  # Alice's exception now expires in 14 days
    assert micro.made(**SOD) == 2
    assert {i.identity_id for i in micro.items("sod_exception")} == {micro.ids["Alice"]}


def test_certifying_the_conflict_needs_a_comment_and_a_renewed_exception_is_reviewed_again(
        micro: Micro) -> None:
    held = _poster_and_reader(micro)
    rule = _rule(micro)
    micro.exception(rule, "Alice", approver="Ada", expires_in_days=10)
    micro.run(**SOD)
    first = micro.items("sod_exception")

    refused = micro.decide(first[0], "certify", "Mia")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "comment"
    for item in first:
        assert micro.decide(item, "certify", "Mia",
                            comment="the control still runs").status_code == 200
    done = micro.sign_off(first[0].campaign_id, "Mia")
    assert (done["applied"]["certified"], done["campaign_state"]) == (2, "closed")
    assert micro.assignment(held["read"]).last_certified_at == micro.now
    assert micro.made(**SOD) == 0  # decided, and still the same event

    micro.advance(days=11)  # the exception expired; a new one is granted for 30 days
    renewed = micro.exception(rule, "Alice", approver="Ada", expires_in_days=30)
    assert micro.made(**SOD) == 0  # not within 14 days of its expiry yet
    micro.advance(days=17)
    assert micro.made(**SOD) == 2
    again = [i for i in micro.items("sod_exception") if i.id not in {f.id for f in first}]
    assert {i.context["sod_exception"]["id"] for i in again} == {renewed}
    assert {i.assignment_id for i in again} == {held["read"], held["poster"]}


def test_without_a_manager_the_approver_reviews_and_without_either_nobody(
        micro: Micro) -> None:
    _poster_and_reader(micro, "Bob")
    _poster_and_reader(micro, "Carol")
    rule = _rule(micro)
    micro.loop.update(Identity, micro.ids["Bob"], manager_id=None)
    micro.loop.update(Identity, micro.ids["Carol"], manager_id=None)
    micro.exception(rule, "Bob", approver="Boss", expires_in_days=3)
    carol = micro.exception(rule, "Carol", approver="Boss", expires_in_days=3)
    micro.loop.update(SodException, uuid.UUID(carol), approver_id=None)

    report = micro.run(**SOD)

    assert report["sod_exception"] == {"items": 2, "campaigns": 1, "under_review": 0,
                                       "ended": 0, "no_reviewer": 2}
    items = micro.items("sod_exception")
    assert {(i.identity_id, i.reviewer_id, i.context["reviewer_rule"]) for i in items} == {
        (micro.ids["Bob"], micro.ids["Boss"], "approver")}


def test_a_warning_period_of_zero_days_turns_the_trigger_off(micro: Micro) -> None:
    _poster_and_reader(micro)
    micro.exception(_rule(micro), "Alice", approver="Ada", expires_in_days=1)

    report = micro.run(sod=0, unused=0, aggregated=False)

    assert "sod_exception" not in report
    assert micro.items() == []
