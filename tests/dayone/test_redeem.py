"""Redeeming the manager's one-time link: the joiner sets their own password on the real
slapd (and binds with it), receives the temporary access pass the Graph emulator holds,
once; the link works only from the first day until it expires; a target failing leaves it
open. Neither the token nor the password reaches the audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectors.memory import MemoryTarget
from idgov.models.audit import AuditEvent
from tests.dayone.conftest import ENTRA_DOMAIN, HIRE, DayOne, ldap_settings
from tests.e2e.conftest import Story
from tests.emulators.graph import GraphEmulator
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki
from tests.slapd import Slapd, can_bind, slapd

__all__ = ["slapd"]

PASSWORD = "Tulip harbour 4 lanterns"
JANE_DN = "uid=jsmith,ou=people,dc=example,dc=com"


def _first_day(day_one: DayOne, *apps: str) -> str:
    """Jane joins; on her first day the engine runs; the token from Maria's message."""
    day_one.join("jane", *apps)
    day_one.story.run_engine()
    day_one.story.clock.set(HIRE)
    stats = day_one.story.run_engine()
    assert stats.failed == 0
    return day_one.token_for("maria")


def test_an_ldap_joiner_sets_a_password_and_binds_with_it(day_one: DayOne,
                                                          slapd: Slapd) -> None:
    day_one.story.application("ldap", "Corporate directory", "ldap", ldap_settings(slapd),
                              {"bind_password": slapd.rootpw})
    token = _first_day(day_one, "ldap")
    message = day_one.notifications("maria")[0]
    assert f"/day-one/#{token}" in message["body"] and "Jane Smith" in message["subject"]

    found = day_one.post("/day-one/lookup", {"token": token})
    assert found.status_code == 200, found.text
    assert [(a["name"], a["method"], a["username"]) for a in found.json()["applications"]] == [
        ("Corporate directory", "set_password", "jsmith")]
    assert found.json()["password_min_length"] == 12

    weak = day_one.post("/day-one/redeem", {"token": token, "password": "Jane-1234"})
    assert weak.status_code == 422
    assert {e["message"] for e in weak.json()["errors"]} == {
        "at least 12 characters", "must not contain your given or family name"}
    named = day_one.post("/day-one/redeem", {"token": token, "password": "xx-jsmith-2026-xx"})
    assert "must not contain your user name" in [e["message"] for e in named.json()["errors"]]
    assert not can_bind(slapd, JANE_DN, PASSWORD)

    done = day_one.post("/day-one/redeem", {"token": token, "password": PASSWORD})
    assert done.status_code == 200, done.text
    assert [(a["name"], a["outcome"], a["temporary_access_pass"])
            for a in done.json()["applications"]] == [
        ("Corporate directory", "password_set", None)]
    assert can_bind(slapd, JANE_DN, PASSWORD)
    assert done.json()["link_id"] == message["object_id"]
    with day_one.story.app.state.ctx.session_factory() as session:
        redeemed = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "day_one_link.redeem")).one()
    assert (redeemed.actor_type, redeemed.actor_id, redeemed.actor_name,
            redeemed.object_id) == ("identity", day_one.story.ids["jane"], "Jane Smith",
                                    message["object_id"])

    again = day_one.post("/day-one/redeem", {"token": token, "password": PASSWORD + "!"})
    assert again.status_code == 410
    assert day_one.post("/day-one/lookup", {"token": token}).status_code == 410
    assert can_bind(slapd, JANE_DN, PASSWORD)
    trail = day_one.audit_text()
    assert token not in trail and PASSWORD not in trail
    assert "day_one_link.create" in trail and "day_one_link.redeem " in trail


def _entra_settings(served: ServedApp, graph: GraphEmulator, pki: TestPki) -> dict[str, Any]:
    return {"authority": f"{served.url}/{graph.tenant_id}", "client_id": graph.client_id,
            "graph_url": f"{served.url}/v1.0", "ca_file": str(pki.ca_file),
            "upn_domain": ENTRA_DOMAIN}


def test_an_entra_joiner_receives_the_temporary_access_pass_once(
        graph_story: Story, graph: GraphEmulator, graph_served: ServedApp,
        pki: TestPki) -> None:
    day_one = DayOne(graph_story)
    graph_story.application("entra", "Entra ID", "entra",
                            _entra_settings(graph_served, graph, pki),
                            {"client_secret": graph.client_secret})
    token = _first_day(day_one, "entra")
    assert graph.access_passes == {}  # nothing issued before the person asks
    lookup = day_one.post("/day-one/lookup", {"token": token}).json()
    assert [(a["method"], a["username"]) for a in lookup["applications"]] == [
        ("temporary_access_pass", f"jsmith@{ENTRA_DOMAIN}")]

    done = day_one.post("/day-one/redeem", {"token": token})
    assert done.status_code == 200, done.text
    [app] = done.json()["applications"]
    user = graph.user_by_upn(f"jsmith@{ENTRA_DOMAIN}")
    assert user is not None
    held = graph.access_passes[user["id"]]
    assert app["outcome"] == "pass_issued"
    assert app["temporary_access_pass"]["value"] == held["temporaryAccessPass"]
    assert (held["lifetimeInMinutes"], held["isUsableOnce"]) == (480, False)
    assert day_one.post("/day-one/redeem", {"token": token}).status_code == 410
    assert graph.access_passes[user["id"]] == held  # not issued twice
    trail = day_one.audit_text()
    assert token not in trail and held["temporaryAccessPass"] not in trail


def test_the_link_works_from_the_first_day_until_it_expires(day_one: DayOne) -> None:
    day_one.memory_app("wiki")
    token = _first_day(day_one, "wiki")
    clock = day_one.story.clock
    clock.set(HIRE - timedelta(hours=1))  # (a clock before the first day)
    early = day_one.post("/day-one/redeem", {"token": token, "password": PASSWORD})
    assert early.status_code == 409, early.text
    assert day_one.post("/day-one/lookup", {"token": token}).status_code == 200
    clock.set(HIRE + timedelta(days=7))
    assert day_one.post("/day-one/lookup", {"token": token}).status_code == 410
    late = day_one.post("/day-one/redeem", {"token": token, "password": PASSWORD})
    assert late.status_code == 410
    assert late.json()["title"] == "Link no longer valid"
    assert not MemoryTarget.get("wiki").check_password("jsmith", PASSWORD)
    unknown = day_one.post("/day-one/redeem", {"token": "x" * 43, "password": PASSWORD})
    assert unknown.status_code == 404


def test_a_target_failing_leaves_the_link_open_and_nothing_shown(day_one: DayOne) -> None:
    day_one.memory_app("wiki")
    day_one.memory_app("mail", "temporary_access_pass")
    token = _first_day(day_one, "wiki", "mail")
    mail = MemoryTarget.get("mail")
    mail.down = True
    failed = day_one.post("/day-one/redeem", {"token": token, "password": PASSWORD})
    assert failed.status_code == 503, failed.text
    body = failed.json()
    assert sorted((a["name"], a["outcome"]) for a in body["applications"]) == [
        ("App mail", "failed"), ("App wiki", "password_set")]
    assert all("temporary_access_pass" not in a for a in body["applications"])  # no pass
    assert MemoryTarget.get("wiki").check_password("jsmith", PASSWORD)  # said honestly
    assert "day_one_link.redeem_failed" in day_one.audit_text()

    mail.down = False
    done = day_one.post("/day-one/redeem", {"token": token, "password": PASSWORD})
    assert done.status_code == 200, done.text
    passes = [a["temporary_access_pass"] for a in done.json()["applications"]
              if a["temporary_access_pass"]]
    assert [p["value"] for p in passes] == [
        next(iter(mail.access_passes.values())).value]
    assert day_one.post("/day-one/redeem", {"token": token, "password": PASSWORD}
                        ).status_code == 410
