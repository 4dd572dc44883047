"""The request and line state machines, written out literally, and the request state that
its lines imply."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from idgov.clock import FixedClock
from idgov.errors import Conflict
from idgov.models.requests import LINE_STATES, REQUEST_STATES, AccessRequest, RequestLine
from idgov.requests.states import (
    LINE_TRANSITIONS,
    REQUEST_TRANSITIONS,
    move,
    request_state_for,
)
from idgov.types import Actor
from tests.conftest import START

# from state        -> allowed next states ("-": terminal)
REQUEST_TABLE = """
draft               submitted cancelled
submitted           pending_approval approved rejected cancelled
pending_approval    approved rejected cancelled provisioning fulfilled partially_fulfilled failed
approved            provisioning fulfilled partially_fulfilled failed
provisioning        fulfilled partially_fulfilled failed
rejected            -
cancelled           -
fulfilled           -
partially_fulfilled -
failed              -
"""

LINE_TABLE = """
pending_approval    approved rejected cancelled
approved            provisioning fulfilled failed
provisioning        fulfilled failed rolled_back
fulfilled           rolled_back
rejected            -
cancelled           -
failed              -
rolled_back         -
"""

# line states                                       -> request state
SETTLED = [
    (["pending_approval"],                            "pending_approval"),
    (["pending_approval", "fulfilled"],               "pending_approval"),
    (["approved"],                                    "approved"),
    (["provisioning", "fulfilled"],                   "provisioning"),
    (["provisioning", "pending_approval"],            "pending_approval"),
    (["fulfilled"],                                   "fulfilled"),
    (["fulfilled", "fulfilled"],                      "fulfilled"),
    (["fulfilled", "rejected"],                       "partially_fulfilled"),
    (["fulfilled", "cancelled"],                      "partially_fulfilled"),
    (["fulfilled", "failed"],                         "partially_fulfilled"),
    (["rejected"],                                    "rejected"),
    (["rejected", "cancelled"],                       "rejected"),
    (["cancelled", "cancelled"],                      "cancelled"),
    (["failed", "rejected"],                          "failed"),
    (["rolled_back"],                                 "failed"),
]


def _parse(text: str) -> dict[str, frozenset[str]]:
    table = {}
    for line in text.strip().splitlines():
        state, *nxt = line.split()
        table[state] = frozenset() if nxt == ["-"] else frozenset(nxt)
    return table


def test_request_transitions_are_exactly_the_table() -> None:
    assert dict(REQUEST_TRANSITIONS) == _parse(REQUEST_TABLE)
    assert set(REQUEST_TRANSITIONS) == set(REQUEST_STATES)


def test_line_transitions_are_exactly_the_table() -> None:
    assert dict(LINE_TRANSITIONS) == _parse(LINE_TABLE)
    assert set(LINE_TRANSITIONS) == set(LINE_STATES)


@pytest.mark.parametrize(("lines", "expected"), SETTLED)
def test_the_request_state_follows_its_lines(lines: list[str], expected: str) -> None:
    assert request_state_for(lines) == expected


def _refused(obj: Any, table: dict[str, frozenset[str]], states: tuple[str, ...]) -> None:
    for current in states:
        for to in states:
            if to in table[current]:
                continue
            obj.state = current
            with pytest.raises(Conflict, match=f"cannot go from {current} to {to}"):
                # Refused before anything is written: no session is needed.
                move(None, obj, to, actor=Actor.system("test"),  # type: ignore[arg-type]
                     clock=FixedClock(START))
            assert obj.state == current


def test_every_other_move_is_refused() -> None:
    _refused(AccessRequest(id=uuid.uuid4(), number="REQ-2026-000001"),
             _parse(REQUEST_TABLE), REQUEST_STATES)
    _refused(RequestLine(id=uuid.uuid4(), number="RITM-2026-000001"),
             _parse(LINE_TABLE), LINE_STATES)
