"""Role expansion and effective access over hand-built snapshots, with literal expectations."""

from __future__ import annotations

import uuid

import pytest

from idgov.policy.expansion import (
    AssignmentRef,
    Path,
    effective_access,
    expand,
    included_roles,
)
from idgov.policy.snapshot import PolicySnapshot
from tests.policy.fixtures import catalog, uid


def names(path: Path) -> str:
    return " -> ".join(step.name for step in path)


def expanded(snapshot: PolicySnapshot, role: str) -> dict[str, list[str]]:
    return {snapshot.entitlement_name(eid): [names(p) for p in paths]
            for eid, paths in expand(snapshot, uid(role)).items()}


CHAIN = (("Finance Clerk", "AP Processor"), ("AP Processor", "Ledger Reader"))


@pytest.mark.parametrize(
    ("inclusions", "grants", "role", "expected"),
    [
        pytest.param((), (), "Auditor", {}, id="role-with-nothing"),
        pytest.param((), (("Auditor", "gl-read"),), "Auditor",
                     {"gl-read": ["Auditor -> gl-read"]}, id="direct-grant"),
        pytest.param(CHAIN, (("Ledger Reader", "gl-read"), ("AP Processor", "ap-invoices-write")),
                     "Finance Clerk",
                     {"gl-read": ["Finance Clerk -> AP Processor -> Ledger Reader -> gl-read"],
                      "ap-invoices-write": ["Finance Clerk -> AP Processor -> ap-invoices-write"]},
                     id="three-levels"),
        pytest.param(CHAIN, (("Ledger Reader", "gl-read"),), "AP Processor",
                     {"gl-read": ["AP Processor -> Ledger Reader -> gl-read"]},
                     id="expansion-starts-at-the-asked-role"),
        pytest.param(
            (("Finance Clerk", "AP Processor"), ("Finance Clerk", "Ledger Reader"),
             ("AP Processor", "Ledger Reader")),
            (("Ledger Reader", "gl-read"), ("Finance Clerk", "gl-read")),
            "Finance Clerk",
            {"gl-read": ["Finance Clerk -> gl-read",
                         "Finance Clerk -> Ledger Reader -> gl-read",
                         "Finance Clerk -> AP Processor -> Ledger Reader -> gl-read"]},
            id="every-path-of-a-diamond-is-kept-shortest-first"),
        pytest.param((("Finance Clerk", "AP Processor"), ("AP Processor", "Finance Clerk")),
                     (("AP Processor", "gl-read"),), "Finance Clerk",
                     {"gl-read": ["Finance Clerk -> AP Processor -> gl-read"]},
                     id="a-cycle-in-bad-data-ends-the-walk"),
    ],
)
def test_expand_lists_every_path_to_each_entitlement(
        inclusions: tuple[tuple[str, str], ...], grants: tuple[tuple[str, str], ...],
        role: str, expected: dict[str, list[str]]) -> None:
    assert expanded(catalog(inclusions=inclusions, grants=grants), role) == expected


def test_included_roles_lists_the_role_itself_and_every_role_below() -> None:
    snapshot = catalog(inclusions=CHAIN)
    got = {snapshot.role_name(rid): [names(p) for p in paths]
           for rid, paths in included_roles(snapshot, uid("Finance Clerk")).items()}
    assert got == {
        "Finance Clerk": ["Finance Clerk"],
        "AP Processor": ["Finance Clerk -> AP Processor"],
        "Ledger Reader": ["Finance Clerk -> AP Processor -> Ledger Reader"],
    }


A1, A2, A3 = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
FC_GL = "Finance Clerk -> AP Processor -> Ledger Reader -> gl-read"
FC_AP = "Finance Clerk -> AP Processor -> ap-invoices-write"


@pytest.mark.parametrize(
    ("assignments", "expected_entitlements", "expected_roles"),
    [
        pytest.param([], {}, {}, id="nothing-assigned"),
        pytest.param(
            [AssignmentRef(A1, "admin", entitlement_id=uid("gl-read"))],
            {"gl-read": [(A1, "admin", "gl-read")]}, {}, id="direct-entitlement-one-step"),
        pytest.param(
            [AssignmentRef(A1, "request", role_id=uid("Finance Clerk"))],
            {"gl-read": [(A1, "request", FC_GL)],
             "ap-invoices-write": [(A1, "request", FC_AP)]},
            {"Finance Clerk": [(A1, "request", "Finance Clerk")],
             "AP Processor": [(A1, "request", "Finance Clerk -> AP Processor")],
             "Ledger Reader": [(A1, "request", "Finance Clerk -> AP Processor -> Ledger Reader")]},
            id="business-role-through-technical-roles"),
        pytest.param(
            [AssignmentRef(A1, "request", role_id=uid("Finance Clerk")),
             AssignmentRef(A2, "birthright", role_id=uid("Ledger Reader")),
             AssignmentRef(A3, "admin", entitlement_id=uid("gl-read"))],
            {"gl-read": [(A3, "admin", "gl-read"),
                         (A2, "birthright", "Ledger Reader -> gl-read"),
                         (A1, "request", FC_GL)],
             "ap-invoices-write": [(A1, "request", FC_AP)]},
            {"Finance Clerk": [(A1, "request", "Finance Clerk")],
             "AP Processor": [(A1, "request", "Finance Clerk -> AP Processor")],
             "Ledger Reader": [(A2, "birthright", "Ledger Reader"),
                               (A1, "request", "Finance Clerk -> AP Processor -> Ledger Reader")]},
            id="one-entitlement-three-grants"),
    ],
)
def test_effective_access_gives_each_grant_with_its_assignment_and_path(
        assignments: list[AssignmentRef],
        expected_entitlements: dict[str, list[tuple[uuid.UUID, str, str]]],
        expected_roles: dict[str, list[tuple[uuid.UUID, str, str]]]) -> None:
    snapshot = catalog(inclusions=CHAIN, grants=(("Ledger Reader", "gl-read"),
                                                 ("AP Processor", "ap-invoices-write")))
    access = effective_access(snapshot, assignments)
    assert {snapshot.entitlement_name(k): [(g.assignment_id, g.source, names(g.path)) for g in v]
            for k, v in access.entitlements.items()} == expected_entitlements
    assert {snapshot.role_name(k): [(g.assignment_id, g.source, names(g.path)) for g in v]
            for k, v in access.roles.items()} == expected_roles


def test_path_steps_carry_type_and_id() -> None:
    snapshot = catalog(grants=(("Auditor", "gl-read"),))
    access = effective_access(snapshot, [AssignmentRef(A1, "admin", role_id=uid("Auditor"))])
    (grant,) = access.entitlements[uid("gl-read")]
    assert [(s.type, s.id) for s in grant.path] == [("role", uid("Auditor")),
                                                    ("entitlement", uid("gl-read"))]


def test_an_assignment_must_name_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        AssignmentRef(A1, "admin")
    with pytest.raises(ValueError, match="exactly one"):
        AssignmentRef(A1, "admin", role_id=uid("Auditor"), entitlement_id=uid("gl-read"))


def test_snapshot_version_follows_content_not_instant() -> None:
    one = catalog(inclusions=CHAIN)
    same = catalog(inclusions=CHAIN)
    other = catalog(inclusions=CHAIN[:1])
    assert one.version == same.version
    assert one.version != other.version
