"""Role expansion and effective access: every path from an assignment down to an entitlement.

Pure functions over a :class:`PolicySnapshot`. A path reads role -> included role -> ... ->
entitlement; a directly assigned entitlement has a one-step path. Every path is kept (not
only the first found), because the explanation of access is the point: revoking one path
must not hide that another still grants the same entitlement.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from idgov.policy.snapshot import ItemType, PolicySnapshot


@dataclass(frozen=True)
class PathStep:
    """One step of a path: a role or the entitlement it ends at."""

    type: ItemType
    id: uuid.UUID
    name: str


Path = tuple[PathStep, ...]


@dataclass(frozen=True)
class AssignmentRef:
    """What policy needs of an assignment: its id, its source and what it names."""

    id: uuid.UUID
    source: str
    role_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if (self.role_id is None) == (self.entitlement_id is None):
            raise ValueError("an assignment names exactly one role or one entitlement")


@dataclass(frozen=True)
class Grant:
    """One reason an identity holds something: the assignment and the path through roles."""

    assignment_id: uuid.UUID
    source: str
    path: Path


@dataclass(frozen=True)
class EffectiveAccess:
    """Everything held, each with all of its grants. Roles include those held by inclusion."""

    entitlements: Mapping[uuid.UUID, tuple[Grant, ...]]
    roles: Mapping[uuid.UUID, tuple[Grant, ...]]


def _role_step(snapshot: PolicySnapshot, role_id: uuid.UUID) -> PathStep:
    return PathStep("role", role_id, snapshot.role_name(role_id))


def _entitlement_step(snapshot: PolicySnapshot, entitlement_id: uuid.UUID) -> PathStep:
    return PathStep("entitlement", entitlement_id, snapshot.entitlement_name(entitlement_id))


def _path_key(path: Path) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    return len(path), tuple(s.name for s in path), tuple(str(s.id) for s in path)


def _walk(snapshot: PolicySnapshot, role_id: uuid.UUID
          ) -> tuple[dict[uuid.UUID, list[Path]], dict[uuid.UUID, list[Path]]]:
    """Every path from ``role_id`` to each role and each entitlement it reaches.

    Depth-first over the inclusion DAG; a role already on the current path is not entered
    again, so a cycle in bad data ends the walk instead of looping.
    """
    roles: dict[uuid.UUID, list[Path]] = {}
    entitlements: dict[uuid.UUID, list[Path]] = {}

    def visit(current: uuid.UUID, prefix: Path, on_path: frozenset[uuid.UUID]) -> None:
        here = (*prefix, _role_step(snapshot, current))
        roles.setdefault(current, []).append(here)
        for grant in snapshot.grants.get(current, ()):
            path = (*here, _entitlement_step(snapshot, grant.entitlement_id))
            entitlements.setdefault(grant.entitlement_id, []).append(path)
        for edge in snapshot.children.get(current, ()):
            if edge.child_id not in on_path:
                visit(edge.child_id, here, on_path | {edge.child_id})

    visit(role_id, (), frozenset({role_id}))
    return roles, entitlements


def expand(snapshot: PolicySnapshot, role_id: uuid.UUID) -> Mapping[uuid.UUID, tuple[Path, ...]]:
    """The entitlements holding ``role_id`` gives, each with every path that gives it."""
    _roles, entitlements = _walk(snapshot, role_id)
    return MappingProxyType(
        {eid: tuple(sorted(paths, key=_path_key)) for eid, paths in entitlements.items()}
    )


def included_roles(snapshot: PolicySnapshot, role_id: uuid.UUID
                   ) -> Mapping[uuid.UUID, tuple[Path, ...]]:
    """The roles holding ``role_id`` gives (itself included), each with every path to it."""
    roles, _entitlements = _walk(snapshot, role_id)
    return MappingProxyType({rid: tuple(sorted(paths, key=_path_key))
                             for rid, paths in roles.items()})


def effective_access(snapshot: PolicySnapshot,
                     assignments: Iterable[AssignmentRef]) -> EffectiveAccess:
    """What the given assignments give, per entitlement and per role, with every grant."""
    entitlements: dict[uuid.UUID, list[Grant]] = {}
    roles: dict[uuid.UUID, list[Grant]] = {}
    for assignment in assignments:
        if assignment.entitlement_id is not None:
            step = _entitlement_step(snapshot, assignment.entitlement_id)
            entitlements.setdefault(assignment.entitlement_id, []).append(
                Grant(assignment.id, assignment.source, (step,)))
            continue
        assert assignment.role_id is not None
        role_paths, ent_paths = _walk(snapshot, assignment.role_id)
        for rid, paths in role_paths.items():
            roles.setdefault(rid, []).extend(
                Grant(assignment.id, assignment.source, p) for p in paths)
        for eid, paths in ent_paths.items():
            entitlements.setdefault(eid, []).extend(
                Grant(assignment.id, assignment.source, p) for p in paths)

    def ordered(grants: list[Grant]) -> tuple[Grant, ...]:
        return tuple(sorted(grants, key=lambda g: (_path_key(g.path), str(g.assignment_id))))

    return EffectiveAccess(
        entitlements=MappingProxyType({k: ordered(v) for k, v in entitlements.items()}),
        roles=MappingProxyType({k: ordered(v) for k, v in roles.items()}),
    )


def find_cycle(edges: Iterable[tuple[uuid.UUID, uuid.UUID]],
               proposed: tuple[uuid.UUID, uuid.UUID]) -> tuple[uuid.UUID, ...] | None:
    """The cycle that adding ``proposed`` (parent, child) to ``edges`` would close, or None.

    The answer starts and ends at the proposed parent and follows the edges, e.g.
    ``(A, B, C, A)`` when B already reaches A through C; ``(A, A)`` for a self-inclusion.
    The shortest such cycle is returned (breadth-first search).
    """
    parent, child = proposed
    if parent == child:
        return (parent, parent)
    adjacency: dict[uuid.UUID, list[uuid.UUID]] = {}
    for a, b in edges:
        adjacency.setdefault(a, []).append(b)
    came_from: dict[uuid.UUID, uuid.UUID | None] = {child: None}
    queue = deque([child])
    while queue:
        node = queue.popleft()
        if node == parent:
            back: list[uuid.UUID] = []
            cursor: uuid.UUID | None = node
            while cursor is not None:
                back.append(cursor)
                cursor = came_from[cursor]
            return (parent, *reversed(back))
        for nxt in sorted(adjacency.get(node, ()), key=str):
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return None
