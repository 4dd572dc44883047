"""Verifying the audit chain: links, hashes, block signatures, the head, unsealed events.

An auditor runs this with nothing but the public keys (``idgov audit verify``); the service
runs it with its own key (``GET /audit/verify``). The chain is read in seq order in batches,
so memory stays flat however many events it holds.

What is checked, event by event in seq order:

- ``seq`` runs 1, 2, 3, ... without gaps;
- ``prev_hash`` is the previous event's ``hash`` (``"0" * 64`` for seq 1);
- ``hash`` is the SHA-256 of the event's canonical record (:func:`chain_record`);
- where an event carries a block ``signature``, it verifies with the public key named by its
  ``key_id`` over :func:`block_message` (seq, hash);

and for the chain as a whole:

- every sealed event is, or is followed by, a signed event: a chain ending in unsigned
  events was extended without the signing key;
- the ``audit_chain_head`` row names the last event's seq and hash;
- no event stays unsealed (``seq`` NULL) longer than the grace period; younger ones are
  reported as pending, not as errors.

Each problem names the event it was found at; ``first_bad`` is the one with the lowest seq.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Row
from sqlalchemy.orm import Session

from idgov.audit import repository
from idgov.audit.canonical import GENESIS_HASH, event_hash
from idgov.audit.repository import Bind
from idgov.audit.service import chain_record, session_signer
from idgov.audit.signing import Verifier, block_message, load_verifier
from idgov.clock import Clock
from idgov.models.audit import AuditEvent

DEFAULT_GRACE = timedelta(minutes=1)
# Rounds of reading on when events were sealed while the verification was reading.
_CATCH_UP_ROUNDS = 3


@dataclass(frozen=True)
class Problem:
    """One defect of the chain, at the event where it shows."""

    kind: str  # seq_gap, broken_link, hash_mismatch, unknown_key, bad_signature,
    # unsigned_tail, head_mismatch, unsealed
    message: str
    seq: int | None = None
    event_id: uuid.UUID | None = None

    def describe(self) -> str:
        """One line naming the event and what is wrong with it."""
        where = f"seq={self.seq}" if self.seq is not None else "seq=none"
        ident = f" id={self.event_id}" if self.event_id is not None else ""
        return f"{where}{ident} [{self.kind}]: {self.message}"


def _order(problem: Problem) -> tuple[int, int]:
    return (0, problem.seq) if problem.seq is not None else (1, 0)


@dataclass
class VerifyResult:
    """The outcome of a verification: counts, the chain head, and every problem found."""

    checked_at: datetime
    events: int = 0
    signed_blocks: int = 0
    signatures_by_key: dict[str, int] = field(default_factory=dict)
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    last_id: uuid.UUID | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    unsealed_pending: int = 0
    unsealed_stale: int = 0
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    first_bad: Problem | None = None
    max_problems: int = 100

    @property
    def ok(self) -> bool:
        """True when no problem was found (pending unsealed events are not problems)."""
        return self.problem_count == 0

    def add(self, kind: str, message: str, *, seq: int | None = None,
            event_id: uuid.UUID | None = None) -> None:
        problem = Problem(kind=kind, message=message, seq=seq, event_id=event_id)
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)
        if self.first_bad is None or _order(problem) < _order(self.first_bad):
            self.first_bad = problem

    def summary(self) -> str:
        """One line: intact or not, how much was checked, the head."""
        head = (f"head seq {self.last_seq} hash {self.last_hash}"
                if self.last_seq is not None else "empty chain")
        keys = ", ".join(f"{k}: {n}" for k, n in sorted(self.signatures_by_key.items()))
        state = "intact" if self.ok else f"BROKEN ({self.problem_count} problems)"
        text = (f"audit chain {state}: {self.events} events, {self.signed_blocks} signed "
                f"blocks, {head}")
        if keys:
            text += f"; signatures by key {keys}"
        if self.unsealed_pending:
            text += f"; {self.unsealed_pending} events pending sealing"
        return text


@dataclass
class _Walk:
    """The state carried from one event to the next while the chain is streamed."""

    expected_seq: int = 1
    prev_hash: str | None = GENESIS_HASH
    unsigned_from: tuple[int, uuid.UUID] | None = None
    keys: Counter[str] = field(default_factory=Counter)


def _check_event(row: Row[Any], walk: _Walk, verifier: Verifier, result: VerifyResult) -> None:
    seq: int = row.seq
    event_id: uuid.UUID = row.id
    if seq != walk.expected_seq:
        missing = (f"seq {walk.expected_seq}" if seq == walk.expected_seq + 1
                   else f"seq {walk.expected_seq} to {seq - 1}")
        result.add("seq_gap", f"{missing} missing before this event", seq=seq, event_id=event_id)
    if row.prev_hash != walk.prev_hash:
        result.add("broken_link", "prev_hash is not the hash of the event before it",
                   seq=seq, event_id=event_id)
    # A Row exposes the same attribute names chain_record() reads from an AuditEvent.
    if event_hash(chain_record(cast(AuditEvent, row))) != row.hash:
        result.add("hash_mismatch", "the event's content does not match its hash "
                   "(changed after it was sealed)", seq=seq, event_id=event_id)
    if row.signature is not None:
        result.signed_blocks += 1
        key_id = row.key_id
        if key_id is None or key_id not in verifier.keys:
            result.add("unknown_key", f"the block is signed with key {key_id}, which is not "
                       "among the public keys given", seq=seq, event_id=event_id)
        elif not verifier.verify(key_id, block_message(seq, row.hash or ""), row.signature):
            result.add("bad_signature", f"the block signature does not verify with key {key_id}",
                       seq=seq, event_id=event_id)
        else:
            walk.keys[key_id] += 1
        walk.unsigned_from = None
    elif walk.unsigned_from is None:
        walk.unsigned_from = (seq, event_id)
    walk.expected_seq = seq + 1
    walk.prev_hash = row.hash
    if result.first_seq is None:
        result.first_seq = seq
    result.events += 1
    result.last_seq = seq
    result.last_hash = row.hash
    result.last_id = event_id


def verify_chain(bind: Bind, verifier: Verifier, *, now: datetime,
                 unsealed_grace: timedelta = DEFAULT_GRACE, batch_size: int = 5000,
                 max_problems: int = 100) -> VerifyResult:
    """Check the whole audit chain behind ``bind`` (a session or a connection).

    ``verifier`` holds the public keys, by key id, that may have signed blocks; give every
    key the chain was ever signed with after a rotation. ``now`` decides which unsealed events
    are overdue. At most ``max_problems`` problems are listed; ``problem_count`` counts all.
    """
    result = VerifyResult(checked_at=now, max_problems=max_problems)
    walk = _Walk()
    head = None
    for _round in range(_CATCH_UP_ROUNDS):
        for row in repository.iter_sealed(bind, after_seq=result.last_seq or 0,
                                          batch_size=batch_size):
            _check_event(row, walk, verifier, result)
        head = repository.read_head(bind)
        # Events sealed while we were reading: read on, so that the head compares like for like.
        if head is None or head[0] <= (result.last_seq or 0):
            break
    result.signatures_by_key = dict(walk.keys)
    if walk.unsigned_from is not None:
        first_seq, first_id = walk.unsigned_from
        result.add("unsigned_tail", f"events seq {first_seq} to {result.last_seq} are not "
                   "covered by any block signature (appended without the signing key)",
                   seq=first_seq, event_id=first_id)
    _check_head(result, head)
    _check_unsealed(bind, result, now=now, grace=unsealed_grace)
    return result


def _check_head(result: VerifyResult, head: tuple[int, str] | None) -> None:
    if head is not None:
        result.head_seq, result.head_hash = head
    expected = (result.last_seq or 0, result.last_hash or GENESIS_HASH)
    if head is None:
        if result.events:
            result.add("head_mismatch", "there are sealed events but no chain head row",
                       seq=result.last_seq, event_id=result.last_id)
        return
    if head != expected:
        result.add("head_mismatch", f"the chain head records seq {head[0]} hash {head[1]}, "
                   f"but the last event is seq {expected[0]} hash {expected[1]}",
                   seq=result.last_seq, event_id=result.last_id)


def _check_unsealed(bind: Bind, result: VerifyResult, *, now: datetime,
                    grace: timedelta) -> None:
    cutoff = now - grace
    stale, pending = repository.unsealed_counts(bind, cutoff=cutoff)
    result.unsealed_pending = pending
    result.unsealed_stale = stale
    if not stale:
        return
    listed = repository.oldest_unsealed(bind, cutoff=cutoff, limit=result.max_problems)
    for event_id, occurred_at in listed:
        result.add("unsealed", f"not sealed into the chain {now - occurred_at} after it "
                   f"occurred (grace {grace})", event_id=event_id)
    # The ones beyond the listing count too, so problem_count tells the whole story.
    result.problem_count += stale - len(listed)


def service_verifier(session: Session, public_key_paths: Sequence[Path] = ()) -> Verifier:
    """The keys the service itself knows: its signing key's public half, and the public key
    files among ``public_key_paths`` that exist (earlier keys kept after a rotation)."""
    paths = [p for p in public_key_paths if p.is_file()]
    keys = dict(load_verifier(*paths).keys) if paths else {}
    signer = session_signer(session)
    if signer is not None:
        keys[signer.key_id] = signer.public_key
    return Verifier(keys=keys)


def verify_service_chain(session: Session, *, public_key_paths: Sequence[Path],
                         clock: Clock) -> VerifyResult:
    """Verify the chain with the service's own public keys (``GET /audit/verify``)."""
    return verify_chain(session, service_verifier(session, public_key_paths), now=clock.now())
