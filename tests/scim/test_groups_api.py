"""/scim/v2/Groups over HTTP: organisational groups whose membership recomputes birthright."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.birthright.rules import create_rule
from idgov.birthright.schemas import BirthrightRuleCreate
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models import Application, Assignment, Entitlement
from idgov.scim import schemas
from idgov.types import Actor
from tests.scim.conftest import add_identity
from tests.scim.test_users_api import error_of

PATCH = schemas.PATCH_OP


def _rule_on_group(factory: sessionmaker[Session], clock: FixedClock, group: str) -> uuid.UUID:
    with unit_of_work(factory) as session:
        app = Application(name="Directory", connector_kind="ldap", settings={})
        session.add(app)
        session.flush()
        ent = Entitlement(application_id=app.id, native_id="cn=guides", name="Guides-Share")
        session.add(ent)
        session.flush()
        create_rule(session, rule_in=BirthrightRuleCreate(
            name="guides", condition={"attribute": "groups", "op": "contains", "value": group},
            entitlement_id=ent.id), actor=Actor.system("tests"), clock=clock)
        return ent.id


def _holds(factory: sessionmaker[Session], identity_id: str, ent_id: uuid.UUID) -> bool:
    with unit_of_work(factory) as session:
        rows = session.scalars(select(Assignment).where(
            Assignment.identity_id == uuid.UUID(identity_id),
            Assignment.entitlement_id == ent_id, Assignment.valid_until.is_(None)))
        return any(True for _ in rows)


def test_group_lifecycle_with_entra_and_okta_shapes(
        scim: TestClient, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ent_id = _rule_on_group(session_factory, clock, "Tour Guides")
    babs = add_identity(session_factory, clock, employee_id="E1", given_name="Babs",
                        user_name="babs")
    mandy = add_identity(session_factory, clock, employee_id="E2", given_name="Mandy",
                         user_name="mandy")
    created = scim.post("/Groups", json={"schemas": [schemas.GROUP],
                                         "displayName": "Tour Guides", "externalId": "tg",
                                         "members": [{"value": babs}]})
    assert created.status_code == 201, created.text
    group = created.json()
    gid = group["id"]
    assert [m["value"] for m in group["members"]] == [babs]
    assert _holds(session_factory, babs, ent_id)
    # Entra: find by displayName without members, then add a member
    found = scim.get("/Groups", params={"filter": 'displayName eq "tour guides"',
                                        "excludedAttributes": "members"}).json()
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    added = scim.patch(f"/Groups/{gid}", json={"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": mandy}]}]})
    assert added.status_code == 200, added.text
    assert {m["value"] for m in added.json()["members"]} == {babs, mandy}
    assert _holds(session_factory, mandy, ent_id)
    member_filter = scim.get("/Groups", params={"filter": f'members[value eq "{mandy}"]'})
    assert member_filter.json()["totalResults"] == 1
    user = scim.get(f"/Users/{mandy}").json()
    assert [g["display"] for g in user["groups"]] == ["Tour Guides"]
    # Okta: remove by value filter; the birthright grant ends after the grace period
    removed = scim.patch(f"/Groups/{gid}", json={"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{babs}"]'}]})
    assert [m["value"] for m in removed.json()["members"]] == [mandy]
    assert not _holds(session_factory, babs, ent_id)
    # Okta: rename with the id in the value
    renamed = scim.patch(f"/Groups/{gid}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "Guides"}}]})
    assert renamed.json()["displayName"] == "Guides"
    assert error_of(scim.post("/Groups", json={"schemas": [schemas.GROUP],
                                               "displayName": "GUIDES"})) == (409, "uniqueness")
    assert error_of(scim.patch(f"/Groups/{gid}", json={"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}]})) == \
        (400, "invalidValue")
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert error_of(scim.get(f"/Groups/{gid}")) == (404, None)


def test_put_replaces_members(scim: TestClient, session_factory: sessionmaker[Session],
                              clock: FixedClock) -> None:
    a = add_identity(session_factory, clock, employee_id="A1", user_name="a1")
    b = add_identity(session_factory, clock, employee_id="B1", user_name="b1")
    group = scim.post("/Groups", json={"schemas": [schemas.GROUP], "displayName": "Ops",
                                       "members": [{"value": a}]}).json()
    put = scim.put(f"/Groups/{group['id']}", json={"schemas": [schemas.GROUP],
                                                   "displayName": "Ops",
                                                   "members": [{"value": b}]},
                   headers={"If-Match": group["meta"]["version"]})
    assert put.status_code == 200, put.text
    assert [m["value"] for m in put.json()["members"]] == [b]
    stale = scim.put(f"/Groups/{group['id']}", json={"schemas": [schemas.GROUP],
                                                     "displayName": "Ops"},
                     headers={"If-Match": group["meta"]["version"]})
    assert error_of(stale)[0] == 412
