"""A small catalog built through the API, and people to hold it (fixtures shared with
tests/catalog/test_impact.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.catalog.factories import Api, add_application, add_identity
from tests.conftest import make_token


@dataclass(frozen=True)
class World:
    """Finance Base grants VPN and ERP-Read; AP Clerk includes Finance Base and grants
    ERP-Post; Treasury grants Payments-Approve. Alice, Bob, Carol and Dave hold nothing yet."""

    api: Api
    ent: dict[str, str]
    role: dict[str, str]
    person: dict[str, str]

    def name_of(self, entitlement_id: str) -> str:
        return next(n for n, i in self.ent.items() if i == entitlement_id)

    def who(self, identity_id: str) -> str:
        return next(n for n, i in self.person.items() if i == identity_id)

    def assign(self, person: str, *, role: str | None = None, entitlement: str | None = None,
               **extra: Any) -> str:
        body: dict[str, Any] = {"identity_id": self.person[person], "reason": "test", **extra}
        if role:
            body["role_id"] = self.role[role]
        if entitlement:
            body["entitlement_id"] = self.ent[entitlement]
        return str(self.api.ok("POST", "/assignments", 201, json=body)["id"])

    def revoke(self, assignment_id: str) -> None:
        self.api.ok("POST", f"/assignments/{assignment_id}/revoke", json={"reason": "done"})

    def operations(self, **params: str) -> list[dict[str, Any]]:
        """Every operation matching ``params``, all pages."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
            page = self.api.ok("GET", "/provisioning/operations", params=query)
            found += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def summary(self, **params: str) -> set[tuple[str, str, str, str]]:
        """(person, entitlement, action, cause) of the matching operations."""
        return {(self.who(o["identity_id"]), self.name_of(o["entitlement_id"]), o["action"],
                 o["cause"]) for o in self.operations(**params)}


@pytest.fixture(name="world")
def world_fixture(client: TestClient, admin_headers: dict[str, str],
          session_factory: sessionmaker[Session]) -> World:
    api = Api(client, admin_headers, add_application(session_factory))
    ent = {name: api.entitlement(name) for name in
           ("VPN", "ERP-Read", "ERP-Post", "Payments-Approve")}
    role = {name: api.role(name) for name in ("Finance Base", "AP Clerk", "Treasury")}
    api.grant(role["Finance Base"], ent["VPN"])
    api.grant(role["Finance Base"], ent["ERP-Read"])
    api.include(role["AP Clerk"], role["Finance Base"])
    api.grant(role["AP Clerk"], ent["ERP-Post"])
    api.grant(role["Treasury"], ent["Payments-Approve"])
    person = {name: add_identity(session_factory, name.upper())
              for name in ("Alice", "Bob", "Carol", "Dave")}
    return World(api, ent, role, person)


@pytest.fixture(name="auditor_headers")
def auditor_headers_fixture(session_factory: sessionmaker[Session],
                    clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(session_factory, clock, "test-auditor",
                                                    ["auditor"])}
