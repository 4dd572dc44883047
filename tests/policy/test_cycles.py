"""find_cycle: the cycle a proposed inclusion would close, spelt along the edges."""

from __future__ import annotations

import pytest

from idgov.policy.expansion import find_cycle
from tests.policy.fixtures import uid

EDGES = [("B", "C"), ("C", "D"), ("D", "A"), ("A", "E"), ("C", "A")]


@pytest.mark.parametrize(
    ("edges", "proposed", "expected"),
    [
        pytest.param([], ("A", "B"), None, id="empty-graph"),
        pytest.param([("A", "B")], ("A", "A"), ["A", "A"], id="self-inclusion"),
        pytest.param([("B", "A")], ("A", "B"), ["A", "B", "A"], id="two-roles"),
        pytest.param([("B", "C"), ("C", "A")], ("A", "B"), ["A", "B", "C", "A"],
                     id="three-roles"),
        pytest.param(EDGES, ("A", "B"), ["A", "B", "C", "A"], id="shortest-cycle-wins"),
        pytest.param([("A", "B"), ("B", "C"), ("A", "C")], ("C", "D"), None,
                     id="diamond-is-no-cycle"),
        pytest.param([("A", "B"), ("B", "C")], ("A", "C"), None, id="shortcut-is-no-cycle"),
    ],
)
def test_find_cycle(edges: list[tuple[str, str]], proposed: tuple[str, str],
                    expected: list[str] | None) -> None:
    by_id = {uid(n): n for n in "ABCDE"}
    got = find_cycle([(uid(a), uid(b)) for a, b in edges], (uid(proposed[0]), uid(proposed[1])))
    assert (None if got is None else [by_id[r] for r in got]) == expected
