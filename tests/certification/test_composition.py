"""Role composition review campaigns over the HTTP API: one item per link in force, the
role's owner reviews it, certify records the link's last certification, revoke ends the
link and its holders lose the access on the target (confirmed by reconciliation), the
deadline's revoke spares protected access, and the evidence lists the items."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from certification.models import ReviewItem
from connectors.errors import DataError
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.catalog import Entitlement, RoleEntitlement, RoleInclusion
from idgov.models.provisioning import ProvisioningOperation
from tests.certification.loop_world import Loop, loop_fixture
from tests.conftest import PersonHeaders

__all__ = ["loop_fixture"]
BASE = "/certification/campaigns"


class Catalog:
    """Finance clerk (owner Mia) grants VPN and ERP-Read and includes ERP poster (no
    owner), which grants ERP-Post (high risk, privileged); Alice and Bob hold Finance clerk,
    Carol holds ERP-Read directly; Boss owns the application. Everything is provisioned."""

    def __init__(self, loop: Loop, client: TestClient, admin: dict[str, str],
                 people: PersonHeaders) -> None:
        self.loop, self.client, self.admin, self.people = loop, client, admin, people
        api = loop.env.api
        loop.update(Entitlement, loop.ent("ERP-Post"), risk="high", privileged=True)
        loop.update(Application, loop.application_id, owner_id=loop.ids["Boss"])
        self.clerk = api.role("Finance clerk", owner_id=str(loop.ids["Mia"]))
        self.poster = api.role("ERP poster")
        self.links = {
            "clerk>VPN": api.grant(self.clerk, loop.env.ent["VPN"])["id"],
            "clerk>ERP-Read": api.grant(self.clerk, loop.env.ent["ERP-Read"])["id"],
            "clerk>poster": api.include(self.clerk, self.poster)["id"],
            "poster>ERP-Post": api.grant(self.poster, loop.env.ent["ERP-Post"])["id"],
        }
        for person in ("Alice", "Bob"):
            loop.grant(person, role_id=uuid.UUID(self.clerk))
        loop.grant("Carol", "ERP-Read")
        loop.provision()

    def create(self, **extra: Any) -> Any:
        body = {"name": "Role composition Q1", "kind": "composition",
                "deadline_at": (self.loop.clock.now() + timedelta(days=14)).isoformat(),
                **extra}
        return self.client.post(BASE, json=body, headers=self.admin)

    def launch(self, **extra: Any) -> dict[str, Any]:
        made = self.create(**extra)
        assert made.status_code == 201, made.text
        launched = self.client.post(f"{BASE}/{made.json()['id']}/launch", headers=self.admin)
        assert launched.status_code == 200, launched.text
        return launched.json()

    def as_(self, who: str) -> dict[str, str]:
        return self.admin if who == "admin" else self.people[str(self.loop.ids[who])]

    def page(self, campaign: str, who: str) -> list[dict[str, Any]]:
        res = self.client.get(f"{BASE}/{campaign}/items", params={"limit": 500},
                              headers=self.as_(who))
        assert res.status_code == 200, res.text
        return res.json()["items"]

    def items(self, campaign: str) -> dict[str, dict[str, Any]]:
        """The campaign's items by link name ("clerk>VPN", ...)."""
        names = {v: k for k, v in self.links.items()}
        return {names[i["role_entitlement_id"] or i["role_inclusion_id"]]: i
                for i in self.page(campaign, "admin")}

    def decide(self, who: str, item: dict[str, Any], decision: str,
               comment: str | None = None) -> None:
        res = self.client.post(f"/certification/items/{item['id']}/decision",
                               json={"decision": decision, "comment": comment},
                               headers=self.as_(who))
        assert res.status_code == 200, res.text

    def sign_off(self, campaign: str, who: str) -> dict[str, Any]:
        res = self.client.post(f"{BASE}/{campaign}/sign-off", headers=self.as_(who))
        assert res.status_code == 200, res.text
        return res.json()

    def link(self, name: str) -> Any:
        model = RoleInclusion if name == "clerk>poster" else RoleEntitlement
        return self.loop.get(model, uuid.UUID(self.links[name]))

    def catalog_revokes(self, name: str) -> list[tuple[str, str, str]]:
        """(person, entitlement, state) of the revoke operations of a link's end."""
        people = {v: k for k, v in self.loop.ids.items()}
        ents = {uuid.UUID(v): k for k, v in self.loop.env.ent.items()}
        with unit_of_work(self.loop.factory) as session:
            return sorted((people[o.identity_id], ents[o.entitlement_id], o.state)
                          for o in session.scalars(select(ProvisioningOperation).where(
                              ProvisioningOperation.cause == "catalog_change",
                              ProvisioningOperation.cause_id == self.links[name],
                              ProvisioningOperation.action == "revoke"))
                          if o.entitlement_id is not None)


@pytest.fixture
def cat(loop: Loop, client: TestClient, admin_headers: dict[str, str],
        people: PersonHeaders) -> Catalog:
    return Catalog(loop, client, admin_headers, people)


def test_launch_makes_one_item_per_link_reviewed_by_the_role_owner(cat: Catalog) -> None:
    campaign = cat.launch(fallbacks=["application_owner"])

    assert (campaign["state"], campaign["counts"]["items"], campaign["counts"]["reviewers"],
            campaign["counts"]["unresolved"], campaign["counts"]["privileged"]) == (
        "active", 4, 2, 0, 2)
    items = cat.items(campaign["id"])
    got = {name: (i["role_name"], i["access_name"], i["identity_id"], i["source"], i["risk"],
                  i["privileged"], i["reviewer_id"] == str(cat.loop.ids["Mia"]))
           for name, i in items.items()}
    assert got == {
        "clerk>VPN": ("Finance clerk", "VPN", None, "catalog", "low", False, True),
        "clerk>ERP-Read": ("Finance clerk", "ERP-Read", None, "catalog", "low", False, True),
        "clerk>poster": ("Finance clerk", "ERP poster", None, "catalog", "high", True, True),
        "poster>ERP-Post": ("ERP poster", "ERP-Post", None, "catalog", "high", True, False),
    }
    assert items["poster>ERP-Post"]["reviewer_id"] == str(cat.loop.ids["Boss"])
    assert items["clerk>poster"]["included_role_id"] == cat.poster
    # the page is grouped by role: ERP poster's item, then Finance clerk's three
    assert [i["role_name"] for i in cat.page(campaign["id"], "admin")] == [
        "ERP poster", "Finance clerk", "Finance clerk", "Finance clerk"]
    assert {i["access_name"] for i in cat.page(campaign["id"], "Mia")} == {
        "VPN", "ERP-Read", "ERP poster"}

    detail = cat.client.get(f"/certification/items/{items['clerk>poster']['id']}",
                            headers=cat.as_("Mia")).json()["context"]
    assert (detail["holders"], detail["includes"]["name"],
            [e["name"] for e in detail["includes"]["entitlements"]], detail["last_certified"],
            detail["link"]["valid_from"][:19], detail["reviewer_rule"]) == (
        2, "ERP poster", ["ERP-Post"], None, "2026-01-15T09:00:00", "owner")
    boss = cat.client.get(f"/certification/items/{items['poster>ERP-Post']['id']}",
                          headers=cat.as_("Boss")).json()["context"]
    assert (boss["holders"], boss["reviewer_rule"]) == (2, "application_owner")


def test_keyset_pages_walk_the_roles_in_order(cat: Catalog) -> None:
    campaign = cat.launch()["id"]
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = cat.client.get(f"{BASE}/{campaign}/items", params=params,
                              headers=cat.admin).json()
        seen += [(i["role_name"], i["id"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r for r, _ in seen] == ["ERP poster"] + ["Finance clerk"] * 3
    assert len({i for _, i in seen}) == 4


def test_without_a_usable_reviewer_the_item_is_unresolved(cat: Catalog) -> None:
    campaign = cat.launch(scope={"role_ids": [cat.poster]})

    assert (campaign["counts"]["items"], campaign["counts"]["unresolved"]) == (1, 1)
    [item] = cat.page(campaign["id"], "admin")
    assert (item["access_name"], item["reviewer_id"]) == ("ERP-Post", None)


def test_scope_filters_pick_links_and_identity_filters_are_refused(cat: Catalog) -> None:
    by_app = cat.launch(scope={"entitlement_ids": [cat.loop.env.ent["ERP-Post"]]})
    assert set(cat.items(by_app["id"])) == {"clerk>poster", "poster>ERP-Post"}

    refused = cat.create(scope={"departments": ["Finance"],
                                "identity_ids": [str(cat.loop.ids["Alice"])],
                                "sources": ["admin"], "min_risk": "high"})

    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [
        "scope.departments", "scope.identity_ids", "scope.sources"]
    listed = cat.client.get(BASE, params={"kind": "composition"}, headers=cat.admin).json()
    assert [c["id"] for c in listed["items"]] == [by_app["id"]]


def test_a_link_under_review_elsewhere_refuses_the_launch_with_409(cat: Catalog) -> None:
    first = cat.launch(name="Clerk only", scope={"role_ids": [cat.clerk]})
    manager = cat.launch(name="Manager review", kind="manager")  # assignments: no overlap
    assert manager["counts"]["items"] == 3

    second = cat.create(name="Everything").json()
    refused = cat.client.post(f"{BASE}/{second['id']}/launch", headers=cat.admin)

    assert refused.status_code == 409, refused.text
    assert "Clerk only" in refused.json()["detail"]
    after = cat.client.get(f"{BASE}/{second['id']}", headers=cat.admin).json()
    assert (after["state"], after["counts"]) == ("draft", {})
    assert first["counts"]["items"] == 3


def test_certify_records_the_link_and_revoke_ends_it_for_every_holder(cat: Catalog) -> None:
    loop = cat.loop
    campaign = cat.launch()["id"]
    items = cat.items(campaign)
    assert loop.members_of("ERP-Read") == {"talice", "tbob", "tcarol"}
    cat.decide("Mia", items["clerk>VPN"], "certify")
    cat.decide("Mia", items["clerk>poster"], "certify")
    cat.decide("Mia", items["clerk>ERP-Read"], "revoke", "ERP-Read is requested now")

    signed = cat.sign_off(campaign, "Mia")

    assert signed["applied"] == {"certified": 2, "requested": 1, "escalated": 0}
    now = loop.clock.now()
    for name in ("clerk>VPN", "clerk>poster"):
        link = cat.link(name)
        assert (link.last_certified_at, link.last_certified_by, link.valid_until) == (
            now, "identity:Test MIA", None)
    ended = cat.link("clerk>ERP-Read")
    assert (ended.valid_until, ended.end_reason) == (now, "certification: Role composition Q1")
    assert cat.link("poster>ERP-Post").last_certified_at is None  # Boss's, not decided
    # Carol holds ERP-Read directly: only Alice and Bob lose it
    assert cat.catalog_revokes("clerk>ERP-Read") == [
        ("Alice", "ERP-Read", "pending"), ("Bob", "ERP-Read", "pending")]
    assert "role.certify_entitlement" in loop.actions(cat.clerk)
    assert "role.end_entitlement" in loop.actions(cat.clerk)
    revoked = uuid.UUID(items["clerk>ERP-Read"]["id"])
    assert loop.remediation_of(revoked) == "requested"

    assert loop.verify() == 0  # operations not run yet
    loop.provision()
    assert loop.members_of("ERP-Read") == {"tcarol"}
    assert loop.verify() == 0  # no reconciliation read since
    run = loop.reconcile()
    assert loop.verify(uuid.UUID(campaign)) == 1

    done = loop.get(ReviewItem, revoked)
    assert done.remediation == "confirmed"
    assert (done.context["remediation"]["runs"], done.context["remediation"]["link_id"]) == (
        [str(run.id)], cat.links["clerk>ERP-Read"])


def test_a_failed_removal_marks_the_composition_item_failed(cat: Catalog) -> None:
    loop = cat.loop
    campaign = cat.launch(scope={"role_ids": [cat.clerk]})["id"]
    items = cat.items(campaign)
    for name in ("clerk>VPN", "clerk>poster"):
        cat.decide("Mia", items[name], "certify")
    cat.decide("Mia", items["clerk>ERP-Read"], "revoke")
    cat.sign_off(campaign, "Mia")
    loop.env.target.fail_next(DataError("no such member"))

    loop.provision()
    loop.reconcile()

    assert loop.verify() == 1
    item = loop.get(ReviewItem, uuid.UUID(items["clerk>ERP-Read"]["id"]))
    assert item.remediation == "failed"
    assert "failed" in item.context["remediation"]["reason"]


def test_the_deadline_revoke_ends_plain_links_and_spares_protected_access(
        cat: Catalog) -> None:
    loop = cat.loop
    campaign = cat.launch(deadline_action="revoke")["id"]
    items = cat.items(campaign)
    loop.clock.advance(timedelta(days=15))

    closed = loop.close(uuid.UUID(campaign))

    assert closed.counts["at_close"] == {"certified": 0, "requested": 2, "escalated": 2,
                                         "undecided": 4, "deadline_action": "revoke"}
    state = {name: loop.get(ReviewItem, uuid.UUID(i["id"])) for name, i in items.items()}
    assert {n: (i.decision, i.remediation) for n, i in state.items()} == {
        "clerk>VPN": ("revoke", "requested"), "clerk>ERP-Read": ("revoke", "requested"),
        "clerk>poster": ("revoke", "escalated"), "poster>ERP-Post": ("revoke", "escalated")}
    # Alice and Bob are the only holders of the privileged ERP-Post: its links stay
    assert "nobody would keep the privileged entitlement ERP-Post" in state[
        "clerk>poster"].context["remediation"]["reason"]
    assert cat.link("clerk>poster").valid_until is None
    assert cat.link("poster>ERP-Post").valid_until is None
    assert cat.link("clerk>VPN").valid_until == loop.clock.now()
    assert cat.catalog_revokes("clerk>VPN") == [("Alice", "VPN", "pending"),
                                                ("Bob", "VPN", "pending")]
    assert cat.catalog_revokes("clerk>poster") == []
    assert len(loop.notes("Ada", "certification.escalated")) == 1


def test_a_break_glass_holder_or_the_application_owner_escalates_a_revoke(
        cat: Catalog) -> None:
    loop = cat.loop
    loop.grant("Carol", "ERP-Post")  # somebody keeps ERP-Post: not the last holder
    loop.provision()
    loop.mark_account("Bob", purpose="break-glass")
    loop.update(Application, loop.application_id, owner_id=loop.ids["Alice"])
    campaign = cat.launch(fallbacks=["application_owner"])["id"]
    items = cat.items(campaign)
    for name in ("clerk>VPN", "clerk>poster", "clerk>ERP-Read"):
        cat.decide("Mia", items[name], "revoke", "review")

    signed = cat.sign_off(campaign, "Mia")

    assert signed["applied"] == {"certified": 0, "requested": 0, "escalated": 3}
    reasons = {n: loop.get(ReviewItem, uuid.UUID(items[n]["id"])).context["remediation"]
               ["reason"] for n in ("clerk>VPN", "clerk>poster")}
    assert reasons["clerk>VPN"].startswith("break-glass account")
    assert reasons["clerk>poster"].startswith("break-glass account")  # Bob loses ERP-Post
    loop.mark_account("Bob", purpose="")
    loop.update(ReviewItem, uuid.UUID(items["poster>ERP-Post"]["id"]), decision="revoke",
                decided_by="identity:Alice", decided_at=loop.clock.now(), comment="x")
    loop.sign_off(uuid.UUID(campaign), "Alice")  # the application's owner reviews it
    owner = loop.get(ReviewItem, uuid.UUID(items["poster>ERP-Post"]["id"]))
    assert (owner.remediation, owner.context["remediation"]["reason"]) == (
        "escalated", "Test ALICE, owner of Directory " + loop.env.target.name
        + ", would lose the privileged entitlement ERP-Post")


def test_the_evidence_lists_composition_items_with_decisions_and_remediation(
        cat: Catalog) -> None:
    campaign = cat.launch(fallbacks=["application_owner"])["id"]
    items = cat.items(campaign)
    cat.decide("Mia", items["clerk>VPN"], "certify", "=still needed")
    cat.decide("Mia", items["clerk>poster"], "certify")
    cat.decide("Mia", items["clerk>ERP-Read"], "revoke")
    cat.sign_off(campaign, "Mia")

    res = cat.client.get(f"{BASE}/{campaign}/report", params={"format": "csv"},
                         headers=cat.admin)
    assert res.status_code == 200, res.text
    rows = list(csv.DictReader(io.StringIO(res.text)))
    got = [(r["subject"], r["role_name"], r["access_type"], r["access_name"], r["decision"],
            r["comment"], r["remediation"], r["identity_id"], r["assignment_id"])
           for r in rows]
    assert got[0] == ("role_composition", "ERP poster", "entitlement", "ERP-Post", "pending",
                      "", "none", "", "")
    assert sorted(got[1:]) == [
        ("role_composition", "Finance clerk", "entitlement", "ERP-Read", "revoke", "",
         "requested", "", ""),
        ("role_composition", "Finance clerk", "entitlement", "VPN", "certify",
         "'=still needed", "none", "", ""),
        ("role_composition", "Finance clerk", "role", "ERP poster", "certify", "", "none",
         "", ""),
    ]
    poster = next(r for r in rows if r["access_name"] == "ERP poster")
    assert (poster["included_role_id"], poster["link_id"]) == (
        cat.poster, cat.links["clerk>poster"])

    body = cat.client.get(f"{BASE}/{campaign}/report", headers=cat.admin).json()
    assert body["campaign"]["kind"] == "composition"
    assert {r["link_id"] for r in body["items"]} == set(cat.links.values())
