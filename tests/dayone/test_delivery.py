"""Delivering day-one access through the provisioning engine: the target's own way where it
has one (Keycloak emails the person), otherwise a one-time link to the manager; no manager,
no link (the operation fails to the resolution group)."""

from __future__ import annotations

import uuid
from typing import Any

from idgov.dayone.service import record_day_one
from idgov.db.session import unit_of_work
from idgov.types import Actor
from tests.dayone.conftest import HIRE, KEYCLOAK_SECRET, LINK, DayOne
from tests.e2e.conftest import Story
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp


def _keycloak_app(story: Story, served: ServedApp) -> str:
    return story.application("kc", "Customer portal", "keycloak", {
        "server_url": served.url + "/", "realm": "idgov", "client_id": "idgov-provisioner",
        "timeout_seconds": 10}, {"client_secret": KEYCLOAK_SECRET})


def _states(day_one: DayOne, app: str) -> list[tuple[str, str]]:
    return [(o["action"], o["state"]) for o in day_one.story.operations(app)]


def test_a_keycloak_joiner_gets_the_execute_actions_email_on_the_first_day(
        keycloak_story: Story, keycloak: KeycloakEmulator, keycloak_served: ServedApp) -> None:
    day_one = DayOne(keycloak_story)
    _keycloak_app(keycloak_story, keycloak_served)
    day_one.join("jane", "kc")
    keycloak_story.run_engine()
    # The account exists before the first day; the email waits for it.
    assert _states(day_one, "kc") == [("create_account", "succeeded"),
                                      ("deliver_access", "pending")]
    assert keycloak.sent_emails == []
    delivery = day_one.deliveries("kc")[0]
    assert delivery["cause"] == "lifecycle"
    keycloak_story.clock.set(HIRE)
    stats = keycloak_story.run_engine()
    assert (stats.succeeded, stats.failed) == (1, 0)
    user = keycloak.user_by_username("jsmith")
    assert user is not None
    assert keycloak.sent_emails == [{
        "user_id": user.id, "username": "jsmith", "email": "jane.smith@example.com",
        "actions": ["UPDATE_PASSWORD", "VERIFY_EMAIL"], "lifespan": 7 * 86400,
        "client_id": "account", "redirect_uri": None}]
    assert _states(day_one, "kc")[-1] == ("deliver_access", "succeeded")
    assert day_one.notifications("maria") == []  # Keycloak's own email: no link


def test_a_keycloak_joiner_without_email_fails_as_a_data_error(
        keycloak_story: Story, keycloak: KeycloakEmulator, keycloak_served: ServedApp) -> None:
    day_one = DayOne(keycloak_story)
    _keycloak_app(keycloak_story, keycloak_served)
    keycloak_story.ids["nemo"] = str(keycloak_story.call("POST", "/identities", 201, json={
        "employee_id": "E-NEMO", "given_name": "Nemo", "family_name": "Nobody",
        "display_name": "Nemo Nobody", "manager_id": keycloak_story.ids["maria"]})["id"])
    day_one.join("nemo", "kc", not_before=None)
    keycloak_story.run_engine()
    delivery = day_one.deliveries("kc")[0]
    assert (delivery["state"], delivery["error_category"]) == ("failed", "data_error")
    assert "User email missing" in delivery["last_error"]
    assert keycloak.sent_emails == []
    assert day_one.notifications("fay", "provisioning.failed")


def test_no_manager_fails_the_operation_to_the_resolution_group(day_one: DayOne) -> None:
    day_one.memory_app("wiki")
    day_one.join("otto", "wiki", not_before=None)
    day_one.story.run_engine()
    delivery = day_one.deliveries("wiki")[0]
    assert (delivery["state"], delivery["error_category"]) == ("failed", "policy_violation")
    assert "no manager" in delivery["last_error"]
    assert [n["subject"] for n in day_one.notifications("fay", "provisioning.failed")] == [
        "Provisioning failed on App wiki: deliver access"]


def test_a_target_without_any_first_access_way_fails_as_not_supported(
        day_one: DayOne) -> None:
    day_one.memory_app("bare", "grant")
    day_one.join("jane", "bare", not_before=None)
    day_one.story.run_engine()
    delivery = day_one.deliveries("bare")[0]
    assert (delivery["state"], delivery["error_category"]) == ("failed", "not_supported")
    assert day_one.notifications("maria") == []


def test_two_applications_share_one_link_and_one_token(day_one: DayOne) -> None:
    day_one.memory_app("wiki")
    day_one.memory_app("mail", "temporary_access_pass")
    day_one.join("jane", "wiki", "mail")
    day_one.story.clock.set(HIRE)
    stats = day_one.story.run_engine()
    assert (stats.succeeded, stats.failed) == (4, 0)
    messages = day_one.notifications("maria")
    assert len(messages) == 2
    assert len([m for m in messages if LINK.search(m["body"])]) == 1  # the token, once
    token = day_one.token_for("maria")
    found = day_one.post("/day-one/lookup", {"token": token}).json()
    assert found["display_name"] == "Jane Smith"
    assert sorted((a["name"], a["method"], a["username"]) for a in found["applications"]) == [
        ("App mail", "temporary_access_pass", "jsmith"), ("App wiki", "set_password", "jsmith")]
    assert found["not_before"].startswith(HIRE.isoformat()[:19])
    assert token not in day_one.audit_text()


def test_recording_is_idempotent_and_skips_manual_applications(day_one: DayOne) -> None:
    story = day_one.story
    day_one.memory_app("wiki")
    story.application("desk", "Front desk badge", "manual", {})
    change = str(uuid.uuid4())
    day_one.join("jane", "wiki", "desk", change=change)
    ctx = story.app.state.ctx
    with unit_of_work(ctx.session_factory) as session:
        again: list[Any] = record_day_one(
            session, identity_id=uuid.UUID(story.ids["jane"]),
            application_ids=[uuid.UUID(story.ids["wiki"]), uuid.UUID(story.ids["desk"])],
            not_before=HIRE, cause_id=f"joiner:{change}", actor=Actor.system("hr"),
            clock=story.clock)
    assert again == []
    wiki = day_one.deliveries("wiki")
    assert len(wiki) == 1 and day_one.deliveries("desk") == []
    assert wiki[0]["idempotency_key"] == (
        f"lifecycle:joiner:{change}:{story.ids['jane']}:app:{story.ids['wiki']}:deliver_access")
