"""The detective scan gives, identity by identity, exactly what evaluate_sod gives."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from idgov.policy.decision import REQUESTED_ID, decide
from idgov.policy.expansion import AssignmentRef, effective_access
from idgov.policy.scan import scan, violations_of
from idgov.policy.snapshot import (
    EntitlementNode,
    InclusionEdge,
    ItemRef,
    PolicySnapshot,
    RoleEntitlementEdge,
    RoleNode,
    SodRuleSpec,
    make_snapshot,
)
from idgov.policy.sod import ExceptionRef, evaluate_sod
from tests.policy.fixtures import APP, AS_OF
from tests.policy.test_sod import HOLDS_BOTH, PAY_VS_VENDOR, snapshot_with, summarise

LATER = datetime(2026, 6, 30, tzinfo=UTC)


def _id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def random_org(seed: int, *, cycle: bool = False
               ) -> tuple[PolicySnapshot, list[tuple[uuid.UUID, list[AssignmentRef]]],
                          dict[uuid.UUID, dict[uuid.UUID, ExceptionRef]]]:
    """A seeded catalog with diamonds (several paths to one item), duplicate links, shared
    names, disabled rules and rules without exceptions; people with random holdings."""
    rng = random.Random(seed)
    roles = [RoleNode(_id(rng), f"R{i % 25}") for i in range(30)]  # some names repeat
    ents = [EntitlementNode(_id(rng), f"e{i}", APP, f"cn=e{i}") for i in range(40)]
    inclusions = []
    for i, parent in enumerate(roles[:-1]):
        for child in rng.sample(roles[i + 1:], min(len(roles) - i - 1, rng.randint(0, 3))):
            inclusions.append(InclusionEdge(parent.id, child.id, _id(rng)))
    inclusions.append(InclusionEdge(roles[0].id, roles[5].id, _id(rng)))  # a second link
    if cycle:  # bad data: the walk must end
        inclusions.append(InclusionEdge(roles[20].id, roles[1].id, _id(rng)))
    grants = [RoleEntitlementEdge(r.id, e.id, _id(rng))
              for r in roles for e in rng.sample(ents, rng.randint(0, 3))]

    def item() -> ItemRef:
        if rng.random() < 0.4:
            return ItemRef("role", rng.choice(roles).id)
        return ItemRef("entitlement", rng.choice(ents).id)

    rules = [SodRuleSpec(_id(rng), f"rule {i}", frozenset(item() for _ in range(rng.randint(1, 3))),
                         frozenset(item() for _ in range(rng.randint(1, 3))),
                         severity=rng.choice(("medium", "high", "critical")),
                         exception_allowed=rng.random() < 0.7, enabled=rng.random() < 0.9)
             for i in range(25)]
    snapshot = make_snapshot(as_of=AS_OF, roles=roles, entitlements=ents, inclusions=inclusions,
                             role_entitlements=grants, sod_rules=rules)
    holdings = []
    for _ in range(120):
        held = [AssignmentRef(_id(rng), "request", role_id=r.id)
                for r in rng.sample(roles, rng.randint(0, 4))]
        held += [AssignmentRef(_id(rng), "admin", entitlement_id=e.id)
                 for e in rng.sample(ents, rng.randint(0, 3))]
        if held and rng.random() < 0.1:  # the same role twice, through two assignments
            first = held[0]
            held.append(AssignmentRef(_id(rng), "birthright", role_id=first.role_id,
                                      entitlement_id=first.entitlement_id))
        holdings.append((_id(rng), held))
    exceptions = {
        person: {r.id: ExceptionRef(_id(rng), r.id, LATER, "review")
                 for r in rng.sample(rules, 3)}
        for person, _held in holdings[::4]
    }
    return snapshot, holdings, exceptions


@pytest.mark.parametrize(("seed", "cycle"), [(1, False), (2, False), (3, True), (4, True)])
def test_scan_equals_evaluate_sod_for_every_identity(seed: int, cycle: bool) -> None:
    snapshot, holdings, exceptions = random_org(seed, cycle=cycle)
    expected = [
        (person, violation)
        for person, held in holdings
        for violation in evaluate_sod(snapshot, effective_access(snapshot, held),
                                      exceptions.get(person, {}))
    ]
    got = list(scan(snapshot, holdings, exceptions))
    assert len(expected) > 20  # the fixture does break rules
    assert any(v.mitigated for _p, v in expected)
    assert got == expected


def test_scan_can_be_limited_to_some_rules() -> None:
    snapshot, holdings, exceptions = random_org(5)
    every = list(scan(snapshot, holdings, exceptions))
    some = {every[0][1].rule.id}
    assert list(scan(snapshot, holdings, exceptions, rules=some)) == [
        (p, v) for p, v in every if v.rule.id in some]


def test_violations_of_matches_the_hand_built_case() -> None:
    snapshot = snapshot_with(PAY_VS_VENDOR)
    assert summarise(violations_of(snapshot, HOLDS_BOTH)) == [
        ("Pay vs vendor",
         ["payments-release: Finance Clerk -> AP Processor -> payments-release"],
         ["vendor-master-write: Vendor Admin -> vendor-master-write"], False)]


def test_nobody_holding_anything_breaks_nothing() -> None:
    snapshot, _holdings, _exceptions = random_org(6)
    assert list(scan(snapshot, [(uuid.UUID(int=1), [])], {})) == []


@pytest.mark.parametrize("seed", [7, 8])
def test_decide_reports_exactly_the_rules_the_item_newly_breaks(seed: int) -> None:
    snapshot, holdings, exceptions = random_org(seed, cycle=seed == 8)
    rng = random.Random(seed)
    items = [ItemRef("role", r) for r in snapshot.roles] + [
        ItemRef("entitlement", e) for e in snapshot.entitlements]
    checked = 0
    for person, held in holdings:
        item = rng.choice(items)
        asked = AssignmentRef(REQUESTED_ID, "requested",
                              role_id=item.id if item.type == "role" else None,
                              entitlement_id=item.id if item.type == "entitlement" else None)
        own = exceptions.get(person, {})
        before = {v.rule.id for v in evaluate_sod(snapshot, effective_access(snapshot, held))}
        expected = tuple(v for v in evaluate_sod(
            snapshot, effective_access(snapshot, [*held, asked]), own)
            if v.rule.id not in before)
        decision = decide(snapshot, item=item, held=held, exceptions=own)
        assert decision.violations == expected
        checked += bool(expected)
    assert checked > 10
