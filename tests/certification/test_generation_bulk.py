"""Generation's bulk path on both backends: items are the same whatever the chunking (the
next chunk is built while the last is written), names with quotes, backslashes, tabs and
accents survive the COPY text format, the items digest is recomputable from the stored
items, and the last sign-in is told for a role as for an entitlement."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from certification import generation
from certification.models import Campaign, ReviewItem
from idgov.db.session import unit_of_work
from tests.certification.gen_world import ACTOR, World, world

__all__ = ["world"]

ODD_NAME = 'Pay "run" \\ back\tslash é ✓'


@pytest.fixture
def org(world: World) -> World:
    for name, manager in (("Boss", None), ("Mia", "Boss"), ("Ann", "Mia"), ("Bob", "Mia"),
                          ("Cy", None), ("Olga", None)):
        world.person(name, manager)
    world.app("ERP", owner="Olga")
    world.ent("ERP-Read", "ERP", owner="Olga")
    world.ent(ODD_NAME, "ERP", risk="high", privileged=True, owner="Olga")
    world.role("Clerk", "ERP-Read", owner="Olga")
    return world


def _shape(item: ReviewItem) -> tuple[Any, ...]:
    return (item.identity_id, item.role_id, item.entitlement_id, item.application_id,
            item.source, item.risk, item.privileged, item.sod_conflict, item.reviewer_id,
            item.reviewer_group_id, item.original_reviewer_id, item.decision,
            item.remediation, item.context)


def test_items_do_not_depend_on_the_chunk_size(org: World) -> None:
    held = [org.assign(who, what) for who in ("Ann", "Bob", "Cy", "Mia")
            for what in ("ERP-Read", ODD_NAME, "Clerk")]
    small = org.campaign("small chunks", launch=False, fallbacks=["owner"])
    with unit_of_work(org.factory) as session:
        campaign = session.get(Campaign, small.id)
        assert campaign is not None
        made = generation.generate_items(session, campaign=campaign, actor=ACTOR,
                                         clock=org.clock, chunk=5)
    assert made == 12
    whole = org.campaign("one chunk", fallbacks=["owner"])

    chunked, at_once = org.by_assignment(small.id), org.by_assignment(whole.id)
    assert set(chunked) == set(at_once) == set(held)
    assert {a: _shape(i) for a, i in chunked.items()} == {
        a: _shape(i) for a, i in at_once.items()}
    assert len({i.id for i in org.items(small.id)} | {i.id for i in org.items(whole.id)}) == 24


def test_odd_characters_in_names_survive_the_bulk_write(org: World) -> None:
    pay = org.assign("Ann", ODD_NAME)
    campaign = org.campaign()
    item = org.by_assignment(campaign.id)[pay]
    assert item.context["item"] == {"type": "entitlement", "name": ODD_NAME}
    assert (item.risk, item.privileged) == ("high", True)


def test_the_items_digest_is_recomputable_from_the_stored_items(org: World) -> None:
    for who in ("Ann", "Bob", "Cy"):
        org.assign(who, "ERP-Read")
    org.group("Auditors", "Boss")
    campaign = org.campaign(fallbacks=["group"], fallback_group_id=str(org.ids["Auditors"]))

    items = org.items(campaign.id)
    total = sum(int.from_bytes(hashlib.sha256(
        f"{i.id.hex}|{i.assignment_id}|{i.reviewer_id}|{i.reviewer_group_id}".encode()
    ).digest()) for i in items) % 2**256
    assert campaign.counts["items_digest"] == f"{total:064x}"
    # Cy has no manager: the group reviews his item; Ann and Bob have Mia.
    assert {i.identity_id: (i.reviewer_id, i.reviewer_group_id) for i in items} == {
        org.ids["Ann"]: (org.ids["Mia"], None), org.ids["Bob"]: (org.ids["Mia"], None),
        org.ids["Cy"]: (None, org.ids["Auditors"])}


def test_a_role_within_one_application_shows_the_last_sign_in(org: World) -> None:
    clerk = org.assign("Ann", "Clerk")  # Clerk reaches ERP only; Ann holds nothing else
    org.account("Ann", "ERP", last_sign_in="2026-01-10T08:00:00+00:00")
    campaign = org.campaign()
    item = org.by_assignment(campaign.id)[clerk]
    assert item.application_id == org.ids["ERP"]
    assert item.context["last_sign_in"] == "2026-01-10T08:00:00+00:00"
