"""Verifying the audit chain: a clean chain passes; each kind of tampering is caught and named."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.canonical import event_hash
from idgov.audit.service import chain_record, install_sealer, record
from idgov.audit.signing import Signer, block_message, generate_signer
from idgov.audit.verify import VerifyResult, verify_chain
from idgov.clock import FixedClock
from idgov.db.session import make_session_factory, unit_of_work
from idgov.models.audit import AuditEvent
from tests.audit.chain import ACTOR, chain_rows, json_param, sql, verifier_of, write_chain


@pytest.fixture
def chain(engine: Engine, session_factory: sessionmaker[Session], clock: FixedClock) -> list[Any]:
    """Nine sealed events in three signed blocks (3 transactions of 3 events)."""
    write_chain(session_factory, clock, transactions=3, events_per_transaction=3)
    return chain_rows(engine)


def _verify(engine: Engine, *signers: Signer, clock: FixedClock, **kw: Any) -> VerifyResult:
    with engine.connect() as conn:
        return verify_chain(conn, verifier_of(*signers), now=clock.now(), **kw)


def _id(row: Any) -> uuid.UUID:
    return uuid.UUID(str(row.id))


def _assert_first_bad(result: VerifyResult, row: Any, *kinds: str) -> None:
    assert not result.ok
    assert result.first_bad is not None
    assert (result.first_bad.seq, result.first_bad.event_id) == (row.seq, _id(row))
    assert result.first_bad.kind in kinds, result.first_bad


@pytest.mark.parametrize("batch_size", [2, 5000])
def test_clean_chain_verifies_with_counts_and_head(engine: Engine, chain: list[Any],
                                                   signer: Signer, clock: FixedClock,
                                                   batch_size: int) -> None:
    result = _verify(engine, signer, clock=clock, batch_size=batch_size)
    assert result.ok, result.problems
    assert (result.events, result.signed_blocks) == (9, 3)
    assert result.signatures_by_key == {signer.key_id: 3}
    assert (result.first_seq, result.last_seq, result.last_hash) == (1, 9, chain[-1].hash)
    assert (result.head_seq, result.head_hash) == (9, chain[-1].hash)
    assert [r.seq for r in chain] == list(range(1, 10))


def test_verification_runs_on_an_orm_session_too(chain: list[Any], signer: Signer,
                                                 session_factory: sessionmaker[Session],
                                                 clock: FixedClock) -> None:
    with session_factory() as session:
        result = verify_chain(session, verifier_of(signer), now=clock.now())
    assert result.ok and result.events == 9


def test_empty_trail_is_an_intact_empty_chain(engine: Engine, signer: Signer,
                                              clock: FixedClock) -> None:
    result = _verify(engine, signer, clock=clock)
    assert result.ok
    assert (result.events, result.last_seq) == (0, None)


def test_changed_after_of_one_event_names_that_event(engine: Engine, chain: list[Any],
                                                     signer: Signer, clock: FixedClock) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_events SET after = {json_param(conn, 'v')} "
                          "WHERE seq = 5"), {"v": '{"n": 1000, "note": "caf\\u00e9"}'})
    result = _verify(engine, signer, clock=clock)
    _assert_first_bad(result, chain[4], "hash_mismatch")
    # The stored hashes still link, so nothing else is reported.
    assert result.problem_count == 1


def test_deleted_middle_event_is_named_at_the_event_after_the_gap(
        engine: Engine, chain: list[Any], signer: Signer, clock: FixedClock) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq = 5")
    result = _verify(engine, signer, clock=clock)
    _assert_first_bad(result, chain[5], "seq_gap")
    assert "seq 5 missing" in result.first_bad.message  # type: ignore[union-attr]
    assert {p.kind for p in result.problems} == {"seq_gap", "broken_link"}


def _forged(chain: list[Any], signer: Signer, clock: FixedClock) -> AuditEvent:
    """An event that never happened, linked to the last one with a correctly computed hash."""
    forged = AuditEvent(id=uuid.uuid4(), seq=chain[-1].seq + 1, occurred_at=clock.now(),
                        actor_type=ACTOR.type, actor_id=None, actor_name=ACTOR.name,
                        action="thing.update", object_type="thing", object_id="forged",
                        before=None, after={"n": 1}, context=None,
                        prev_hash=chain[-1].hash, key_id=signer.key_id)
    forged.hash = event_hash(chain_record(forged))
    return forged


def _insert(engine: Engine, event: AuditEvent, *, move_head: bool) -> None:
    values = {c.key: getattr(event, c.key) for c in AuditEvent.__table__.columns}
    with engine.begin() as conn:
        conn.execute(insert(AuditEvent).values(**values))
    if move_head:
        sql(engine, "UPDATE audit_chain_head SET seq = :s, hash = :h", s=event.seq, h=event.hash)


def test_forged_event_appended_with_a_valid_hash_is_caught_as_unsigned(
        engine: Engine, chain: list[Any], signer: Signer, clock: FixedClock) -> None:
    forged = _forged(chain, signer, clock)
    _insert(engine, forged, move_head=True)
    result = _verify(engine, signer, clock=clock)
    assert not result.ok
    assert result.first_bad is not None
    assert (result.first_bad.seq, result.first_bad.event_id) == (10, forged.id)
    assert result.first_bad.kind == "unsigned_tail"
    assert result.problem_count == 1


def test_forged_event_signed_with_a_foreign_key_is_caught(
        engine: Engine, chain: list[Any], signer: Signer, clock: FixedClock) -> None:
    attacker = generate_signer()
    forged = _forged(chain, attacker, clock)
    forged.signature = attacker.sign(block_message(10, forged.hash or ""))
    _insert(engine, forged, move_head=False)
    result = _verify(engine, signer, clock=clock)
    assert result.first_bad is not None
    assert (result.first_bad.seq, result.first_bad.event_id) == (10, forged.id)
    assert {p.kind for p in result.problems} == {"unknown_key", "head_mismatch"}


def test_swapped_seq_of_two_events_names_the_lower_position(
        engine: Engine, chain: list[Any], signer: Signer, clock: FixedClock) -> None:
    sql(engine, "UPDATE audit_events SET seq = -1 WHERE seq = 3")
    sql(engine, "UPDATE audit_events SET seq = 3 WHERE seq = 7")
    sql(engine, "UPDATE audit_events SET seq = 7 WHERE seq = -1")
    result = _verify(engine, signer, clock=clock)
    assert result.first_bad is not None
    # Position 3 now holds the event that was sealed as seq 7.
    assert (result.first_bad.seq, result.first_bad.event_id) == (3, _id(chain[6]))
    assert result.first_bad.kind in {"broken_link", "hash_mismatch"}
    kinds_at_3 = {p.kind for p in result.problems if p.seq == 3}
    assert kinds_at_3 == {"broken_link", "hash_mismatch"}


def test_altered_signature_is_caught(engine: Engine, chain: list[Any], signer: Signer,
                                     clock: FixedClock) -> None:
    other = base64.b64encode(signer.private_key.sign(b"something else")).decode()
    sql(engine, "UPDATE audit_events SET signature = :sig WHERE seq = 6", sig=other)
    result = _verify(engine, signer, clock=clock)
    _assert_first_bad(result, chain[5], "bad_signature")


def test_rewound_chain_head_is_caught(engine: Engine, chain: list[Any], signer: Signer,
                                     clock: FixedClock) -> None:
    sql(engine, "UPDATE audit_chain_head SET seq = 6, hash = :h", h=chain[5].hash)
    result = _verify(engine, signer, clock=clock)
    _assert_first_bad(result, chain[8], "head_mismatch")


def _unsealed_event(engine: Engine, clock: FixedClock) -> uuid.UUID:
    """Commit an event on a session without the sealer, as a crashed sealing step leaves it."""
    with Session(engine) as session:
        event = record(session, actor=ACTOR, action="thing.update", object_type="thing",
                       object_id="late", clock=clock)
        session.commit()
        return event.id


def test_event_left_unsealed_past_the_grace_is_an_error(
        engine: Engine, chain: list[Any], signer: Signer, clock: FixedClock) -> None:
    event_id = _unsealed_event(engine, clock)
    clock.advance(timedelta(minutes=2))
    result = _verify(engine, signer, clock=clock)
    assert not result.ok
    assert result.first_bad is not None
    assert (result.first_bad.kind, result.first_bad.event_id) == ("unsealed", event_id)
    assert result.unsealed_stale == 1


def test_recent_unsealed_event_is_pending_not_an_error(
        engine: Engine, chain: list[Any], signer: Signer, clock: FixedClock) -> None:
    _unsealed_event(engine, clock)
    clock.advance(timedelta(seconds=30))
    result = _verify(engine, signer, clock=clock)
    assert result.ok, result.problems
    assert (result.unsealed_pending, result.unsealed_stale) == (1, 0)


def test_rotated_keys_verify_only_when_every_public_key_is_given(
        engine: Engine, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    write_chain(session_factory, clock, transactions=2, events_per_transaction=2, tag="old")
    new_signer = generate_signer()
    rotated = make_session_factory(engine)
    install_sealer(rotated, new_signer)
    write_chain(rotated, clock, transactions=2, events_per_transaction=2, tag="new")
    rows = chain_rows(engine)

    both = _verify(engine, signer, new_signer, clock=clock)
    assert both.ok, both.problems
    assert both.signatures_by_key == {signer.key_id: 2, new_signer.key_id: 2}

    old_only = _verify(engine, signer, clock=clock)
    # The first block of the new key ends at seq 6.
    _assert_first_bad(old_only, rows[5], "unknown_key")
    new_only = _verify(engine, new_signer, clock=clock)
    _assert_first_bad(new_only, rows[1], "unknown_key")


def test_event_recorded_before_a_rolled_back_savepoint_is_still_sealed(
        engine: Engine, session_factory: sessionmaker[Session], signer: Signer,
        clock: FixedClock) -> None:
    with unit_of_work(session_factory) as session:
        record(session, actor=ACTOR, action="kept", object_type="thing", object_id="1",
               clock=clock)
        savepoint = session.begin_nested()
        record(session, actor=ACTOR, action="undone", object_type="thing", object_id="2",
               clock=clock)
        savepoint.rollback()
    with session_factory() as session:
        events = session.execute(select(AuditEvent.action, AuditEvent.seq)).all()
    assert [tuple(e) for e in events] == [("kept", 1)]
    assert _verify(engine, signer, clock=clock).ok
