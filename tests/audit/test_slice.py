"""Audit slices: what a time, object or action slice holds, and that the offline check
accepts it and fails, naming the first problem, on any change."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.signing import Signer, block_message, generate_signer
from idgov.audit.slice_export import stream_slice
from idgov.audit.slice_format import SliceFilters, encode_line
from idgov.audit.slice_verify import SliceCheck, verify_slice
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from tests.audit.chain import verifier_of
from tests.audit.slice_world import build_world, parse, shape
from tests.conftest import START

Lines = list[dict[str, Any]]


@pytest.fixture
def world(session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    build_world(session_factory, clock)


def _export(factory: sessionmaker[Session], signer: Signer, clock: FixedClock,
            **filters: Any) -> bytes:
    with unit_of_work(factory) as session:
        return b"".join(stream_slice(session, filters=SliceFilters(**filters), signer=signer,
                                     clock=clock, batch_size=2))


def _check(data: bytes, *signers: Signer) -> SliceCheck:
    return verify_slice(data.splitlines(keepends=True), verifier_of(*signers))


def _seqs(data: bytes) -> list[int]:
    return [o["record"]["seq"] for o in parse(data) if o["type"] == "event"]


def test_time_slice_runs_from_the_first_match_to_the_signature_of_the_last(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock,
                   occurred_from=START + timedelta(minutes=15),
                   occurred_to=START + timedelta(minutes=65))
    # d3 (1h10m) is outside the period but ends d2's block; d9 (30m) was sealed after it.
    assert shape(data) == [("d2", "door.close", "selected"), ("d3", "door.open", "proof"),
                           ("d9", "door.open", "selected")]
    assert _seqs(data) == [4, 5, 6]
    header, trailer = parse(data)[0], parse(data)[-1]
    assert header["kind"] == "contiguous"
    assert header["filters"] == {"from": "2026-01-15T09:15:00+00:00",
                                 "to": "2026-01-15T10:05:00+00:00", "object_type": None,
                                 "object_id": None, "actor_id": None, "action": None}
    assert (header["through_seq"], header["generated_at"]) == (8, "2026-01-15T11:00:00+00:00")
    assert {k: trailer[k] for k in ("events", "selected", "proof", "runs", "signed_blocks",
                                    "first_seq", "last_seq", "block_key_ids")} == {
        "events": 3, "selected": 2, "proof": 1, "runs": 1, "signed_blocks": 2,
        "first_seq": 4, "last_seq": 6, "block_key_ids": [signer.key_id]}
    check = _check(data, signer)
    assert check.ok, [p.describe() for p in check.problems]
    assert check.summary().startswith("audit slice verified: contiguous, 3 events (2 selected, "
                                      "1 proof), seq 4..6 in 1 run, 2 signed blocks")


def test_unfiltered_slice_is_the_whole_chain(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock)
    assert _seqs(data) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert {role for _o, _a, role in shape(data)} == {"selected"}
    assert _check(data, signer).ok


def test_object_slice_is_runs_each_closed_by_its_block_signature(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock, object_type="door", object_id="d1")
    assert shape(data) == [("d1", "door.open", "selected"), ("d2", "door.open", "proof"),
                           ("d1", "door.close", "selected"), ("d1", "door.open", "selected"),
                           ("d3", "door.close", "proof")]
    assert _seqs(data) == [1, 2, 3, 7, 8]
    assert parse(data)[0]["kind"] == "filtered"
    assert (parse(data)[-1]["runs"], parse(data)[-1]["signed_blocks"]) == (2, 2)
    check = _check(data, signer)
    assert check.ok, [p.describe() for p in check.problems]
    assert "in 2 runs" in check.summary()


def test_action_slice_joins_runs_that_meet(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock, action="door.close")
    assert shape(data) == [("d1", "door.close", "selected"), ("d2", "door.close", "selected"),
                           ("d3", "door.open", "proof"), ("d3", "door.close", "selected")]
    assert _seqs(data) == [3, 4, 5, 8]
    assert parse(data)[-1]["runs"] == 2
    assert _check(data, signer).ok


def test_slice_with_no_match_is_a_signed_empty_file(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock, actor_id="nobody")
    assert [o["type"] for o in parse(data)] == ["header", "trailer"]
    check = _check(data, signer)
    assert check.ok and "0 events" in check.summary()


def _rewrite(data: bytes, change: Callable[[Lines], None]) -> bytes:
    lines = parse(data)
    change(lines)
    return b"".join(encode_line(o) for o in lines)


def _at(lines: Lines, seq: int) -> int:
    return next(i for i, o in enumerate(lines) if o["type"] == "event"
                and o["record"]["seq"] == seq)


def _modify(lines: Lines) -> None:
    lines[_at(lines, 2)]["record"]["after"]["state"] = "open-wide"


def _remove_middle(lines: Lines) -> None:
    del lines[_at(lines, 4)]


def _swap(lines: Lines) -> None:
    i, j = _at(lines, 4), _at(lines, 5)
    lines[i], lines[j] = lines[j], lines[i]


def _forge_block_signature(lines: Lines) -> None:
    event = lines[_at(lines, 3)]
    event["signature"] = generate_signer().sign(block_message(3, event["hash"]))


def _change_header(lines: Lines) -> None:
    lines[0]["filters"]["to"] = "2026-01-15T12:00:00+00:00"


def _change_trailer(lines: Lines) -> None:
    lines[-1]["selected"] = 7


def _truncate(lines: Lines) -> None:
    del lines[-1]


def _promote_proof(lines: Lines) -> None:
    lines[_at(lines, 5)]["role"] = "selected"


@pytest.mark.parametrize(("change", "kind", "seq", "words"), [
    (_modify, "hash_mismatch", 2, "does not match its hash"),
    (_remove_middle, "seq_gap", 5, "seq 4 missing before this event"),
    (_swap, "seq_gap", 5, "seq 4 missing before this event"),
    (_forge_block_signature, "bad_signature", 3, "block signature does not verify"),
    (_change_header, "header_altered", None, "header differs from the one the trailer signs"),
    (_change_trailer, "bad_trailer_signature", None, "trailer's signature does not verify"),
    (_truncate, "no_trailer", None, "ends without its signed trailer"),
    (_promote_proof, "not_matching", 5, "marked selected but does not match"),
])
def test_a_changed_slice_fails_naming_the_first_problem(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock, change: Callable[[Lines], None], kind: str, seq: int | None,
        words: str) -> None:
    # 1..6: a contiguous slice from T0 to T0+65m (d3 at 1h10m is proof, d9 at 30m selected).
    data = _export(session_factory, signer, clock, occurred_to=START + timedelta(minutes=65))
    assert _seqs(data) == [1, 2, 3, 4, 5, 6] and _check(data, signer).ok
    check = _check(_rewrite(data, change), signer)
    assert not check.ok
    assert check.first is not None
    assert (check.first.kind, check.first.seq) == (kind, seq)
    assert words in check.first.message
    assert check.summary().startswith("audit slice NOT verified")


def test_a_swapped_pair_is_also_reported_out_of_order(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock)
    kinds = [(p.kind, p.seq) for p in _check(_rewrite(data, _swap), signer).problems]
    assert ("out_of_order", 4) in kinds


def test_removing_a_selected_event_from_an_object_slice_fails(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock, object_type="door", object_id="d1")
    def drop(*seqs: int) -> Callable[[Lines], None]:
        def change(lines: Lines) -> None:
            for seq in seqs:
                del lines[_at(lines, seq)]
        return change

    without_first = _rewrite(data, drop(1))
    first = _check(without_first, signer).first
    assert first is not None and (first.kind, first.seq) == ("orphan_proof", 2)
    # A selected event that closes its own run leaves no orphan: the signed counts catch it.
    without_last_run = _rewrite(data, drop(7, 8))
    first = _check(without_last_run, signer).first
    assert first is not None and first.kind == "events_altered"


def test_a_slice_signed_by_another_key_fails(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock, object_id="d1", object_type="door")
    other = generate_signer()
    check = _check(data, other)
    assert check.first is not None and check.first.kind == "unknown_key"
    assert f"signed with key {signer.key_id}" in check.first.message


def test_every_one_byte_change_fails(
        world: None, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    data = _export(session_factory, signer, clock, object_type="door", object_id="d1")
    verifier = verifier_of(signer)
    passed = []
    for i in range(len(data)):
        changed = bytearray(data)
        changed[i] = (changed[i] + 1) % 256 if changed[i] != 0x09 else 0x0B
        if verify_slice(bytes(changed).splitlines(keepends=True), verifier).ok:
            passed.append(i)
    assert passed == []
    assert json.loads(data.splitlines()[0])["type"] == "header"


def test_an_event_of_a_bulk_block_is_proved_by_the_rest_of_the_block(
        session_factory: sessionmaker[Session], signer: Signer, clock: FixedClock) -> None:
    from idgov.audit.service import EventSpec, record_many
    from tests.audit.slice_world import GUARD

    with unit_of_work(session_factory) as session:
        record_many(session, [EventSpec("badge.issue", "badge", f"b{n}", after={"n": n})
                              for n in range(4)], actor=GUARD, clock=clock)
    data = _export(session_factory, signer, clock, object_type="badge", object_id="b1")
    assert [(o, role) for o, _a, role in shape(data)] == [
        ("b1", "selected"), ("b2", "proof"), ("b3", "proof")]
    check = _check(data, signer)
    assert check.ok, [p.describe() for p in check.problems]
