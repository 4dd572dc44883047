"""The delegation settings page: errors at their fields, then a delegation saved and
revoked through the same services as /delegations."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from idgov.db.session import unit_of_work
from idgov.models.requests import Delegation
from tests.catalog.factories import add_identity


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_a_person_delegates_their_approvals_and_revokes_it(ui_app: FastAPI) -> None:
    factory = ui_app.state.ctx.session_factory
    boss = add_identity(factory, "BOSS")
    deputy = add_identity(factory, "DEPUTY", boss)
    with TestClient(ui_app) as client:
        token = _csrf(client.get("/ui/sign-in").text)
        client.post("/ui/sign-in/demo", data={"csrf_token": token,
                                              "subject": f"identity:{boss}"})
        page = client.get("/ui/delegations")
        assert page.status_code == 200
        token = _csrf(page.text)
        bad = client.post("/ui/delegations", data={
            "csrf_token": token, "delegate_id": deputy, "ends_at": "2026-01-01T09:00",
            "max_risk": "medium"})
        assert bad.status_code == 422
        assert re.findall(r'data-field-error="([^"]+)">([^<]*)<', bad.text) == [
            ("ends_at", "must be after starts_at")]
        good = client.post("/ui/delegations", data={
            "csrf_token": token, "delegate_id": deputy, "ends_at": "2026-02-01T09:00",
            "max_risk": "high", "reason": "Holiday"}, follow_redirects=False)
        assert (good.status_code, good.headers["location"]) == (303, "/ui/delegations")
        with unit_of_work(factory) as session:
            rows = session.execute(select(Delegation.max_risk, Delegation.reason,
                                          Delegation.ends_at)).all()
        assert [(r[0], r[1], r[2].isoformat()[:16]) for r in rows] == [
            ("high", "Holiday", "2026-02-01T09:00")]
        listing = client.get("/ui/delegations").text
        revoke = re.search(r'action="(/ui/delegations/[0-9a-f-]+/revoke)"', listing)
        assert revoke is not None
        done = client.post(revoke.group(1), data={"csrf_token": token},
                           follow_redirects=False)
        assert done.status_code == 303
        again = client.post(revoke.group(1), data={"csrf_token": token})
        assert again.status_code == 409  # already revoked, as the API answers
