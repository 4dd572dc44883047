"""Scope filters and reviewer resolution: pure, table-driven."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from certification.scoping import (
    ASSIGNMENT_SOURCES,
    NOBODY,
    ItemFacts,
    Reviewer,
    ReviewerRule,
    holding_in_scope,
    item_in_scope,
    parse_scope,
    resolve_reviewer,
    validate_scope,
)
from idgov.models.assignment import ASSIGNMENT_SOURCES as CORE_SOURCES

U = {name: uuid.UUID(int=i + 1) for i, name in enumerate(
    ("erp", "crm", "read", "pay", "clerk", "ann", "mia", "boss", "olga", "grp", "a1"))}


def test_the_sources_agree_with_the_core() -> None:
    assert ASSIGNMENT_SOURCES == CORE_SOURCES


@pytest.mark.parametrize(("raw", "problems"), [
    (None, []),
    ({}, []),
    ({"application_ids": [str(U["erp"])], "min_risk": "high", "sources": ["request"]}, []),
    ([], [("scope", "must be an object")]),
    ({"colour": "red"}, [("scope.colour", "unknown scope filter")]),
    ({"role_ids": "x"}, [("scope.role_ids", "must be a list of ids")]),
    ({"role_ids": ["nope"]}, [("scope.role_ids[0]", "not a UUID")]),
    ({"min_risk": "extreme"}, [("scope.min_risk", "must be one of low, medium, high, critical")]),
    ({"privileged_only": "yes"}, [("scope.privileged_only", "must be true or false")]),
    ({"departments": [""]}, [("scope.departments", "must be a list of department names")]),
])
def test_validate_scope(raw: Any, problems: list[tuple[str, str]]) -> None:
    found = validate_scope(raw)
    assert [p for p, _ in found] == [p for p, _ in problems]
    for (_, got), (_, wanted) in zip(found, problems, strict=True):
        assert wanted in got


READ = ItemFacts("entitlement", U["read"], frozenset({U["erp"]}), "low", False)
PAY = ItemFacts("entitlement", U["pay"], frozenset({U["erp"]}), "high", True)
CLERK = ItemFacts("role", U["clerk"], frozenset({U["erp"], U["crm"]}), "critical", False)


@pytest.mark.parametrize(("scope", "kind", "inside"), [
    ({}, "manager", {"read", "pay", "clerk"}),
    ({"application_ids": [str(U["crm"])]}, "manager", {"clerk"}),  # the role reaches CRM
    ({"entitlement_ids": [str(U["read"])]}, "manager", {"read"}),
    ({"role_ids": [str(U["clerk"])], "entitlement_ids": [str(U["pay"])]}, "manager",
     {"pay", "clerk"}),
    ({"min_risk": "high"}, "manager", {"pay", "clerk"}),
    ({"min_risk": "critical"}, "manager", {"clerk"}),
    ({"privileged_only": True}, "manager", {"pay"}),
    ({}, "privileged", {"pay", "clerk"}),  # privileged or high risk and above
    ({"application_ids": [str(U["crm"])]}, "privileged", {"clerk"}),
])
def test_item_in_scope(scope: dict[str, Any], kind: str, inside: set[str]) -> None:
    parsed = parse_scope(scope, kind=kind)
    named = {"read": READ, "pay": PAY, "clerk": CLERK}
    assert {n for n, facts in named.items() if item_in_scope(parsed, facts)} == inside


@pytest.mark.parametrize(("scope", "holding", "inside"), [
    ({}, {}, True),
    ({"departments": ["Finance"]}, {"department": "Finance"}, True),
    ({"departments": ["Finance"]}, {"department": None}, False),
    ({"identity_ids": [str(U["ann"])]}, {}, True),
    ({"identity_ids": [str(U["mia"])]}, {}, False),
    ({"sources": ["birthright"]}, {}, False),
    ({"assignment_ids": [str(U["a1"])]}, {}, True),
])
def test_holding_in_scope(scope: dict[str, Any], holding: dict[str, Any],
                          inside: bool) -> None:
    values = {"assignment_id": U["a1"], "identity_id": U["ann"], "department": "Finance",
              "source": "request", **holding}
    assert holding_in_scope(parse_scope(scope), **values) is inside


MANAGERS = {U["ann"]: U["mia"], U["mia"]: U["boss"], U["boss"]: None, U["olga"]: None}


@pytest.mark.parametrize(("kind", "fallbacks", "who", "owner", "app_owner", "inactive",
                          "expected"), [
    ("manager", [], "ann", None, None, set(), Reviewer(U["mia"], None, "manager")),
    ("manager", ["manager_of_manager"], "ann", None, None, {"mia"},
     Reviewer(U["boss"], None, "manager_of_manager")),
    ("manager", ["manager_of_manager", "owner"], "olga", "mia", None, set(),
     Reviewer(U["mia"], None, "owner")),  # no manager, hence no manager's manager
    ("manager", ["owner", "group"], "boss", "boss", None, set(),
     Reviewer(None, U["grp"], "group")),  # the owner is the person: skipped
    ("owner", [], "ann", "olga", None, set(), Reviewer(U["olga"], None, "owner")),
    ("owner", ["manager"], "olga", "olga", None, set(), NOBODY),  # self, then no manager
    ("application", ["group"], "ann", "mia", "olga", {"olga"}, Reviewer(None, U["grp"], "group")),
    ("application", [], "ann", None, "olga", set(), Reviewer(U["olga"], None,
                                                             "application_owner")),
    ("privileged", [], "ann", None, None, set(), Reviewer(U["mia"], None, "manager")),
    ("manager", ["group"], "olga", None, None, set(), Reviewer(None, U["grp"], "group")),
])
def test_resolve_reviewer(kind: str, fallbacks: list[str], who: str, owner: str | None,
                          app_owner: str | None, inactive: set[str],
                          expected: Reviewer) -> None:
    rule = ReviewerRule.of(kind, fallbacks, U["grp"] if "group" in fallbacks else None)
    active = {u for n, u in U.items() if n not in inactive}
    found = resolve_reviewer(rule, identity_id=U[who], manager_of=MANAGERS.get,
                             is_active=active.__contains__,
                             item_owner=U[owner] if owner else None,
                             application_owner=U[app_owner] if app_owner else None)
    assert found == expected


def test_a_group_fallback_without_a_group_is_skipped() -> None:
    rule = ReviewerRule.of("manager", ["group"], None)
    assert resolve_reviewer(rule, identity_id=U["olga"], manager_of=MANAGERS.get,
                            is_active=lambda _: True, item_owner=None,
                            application_owner=None) == NOBODY
