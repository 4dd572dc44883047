"""Verifying an audit slice offline, with nothing but the file and the public keys (pure).

The file format is described in :mod:`idgov.audit.slice_format`. The file is read once, line
by line, so memory stays flat. What is checked:

- the first line is a slice header of a known version, with well-formed filters whose kind
  (contiguous or filtered) is the one stated;
- each event line: its record has exactly the hashed fields and its ``hash`` is SHA-256 of
  the record's canonical JSON; events come in ascending seq; where seq follows on from the
  event before, ``prev_hash`` is that event's hash; a contiguous slice has no gap; each run
  (the events between two gaps) starts with a selected event and ends with a signed one;
  each block signature verifies with the key named by the record's ``key_id``; an event is
  marked ``selected`` exactly when it matches the header's filters; no seq lies beyond the
  chain head the header names;
- the last line is the trailer, in its canonical form, signed by a key given, whose digests
  are those of the header line and of the event lines and whose counts are the file's.

Problems are listed in this order: the header and the trailer (a file that is incomplete or
whose signed parts were changed), then the event lines in file order, then the digests and
counts of the whole; ``first`` is the first of them. One changed byte anywhere fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from idgov.audit.canonical import jsonable_hash
from idgov.audit.signing import Verifier, block_message
from idgov.audit.slice_format import (
    EVENT_KEYS,
    FILTER_KEYS,
    FORMAT,
    HEADER_KEYS,
    PROOF,
    RECORD_KEYS,
    SELECTED,
    TRAILER_KEYS,
    VERSION,
    SliceFilters,
    encode_line,
    trailer_message,
)

_FILE, _EVENTS, _TOTALS = 0, 1, 2


@dataclass(frozen=True)
class SliceProblem:
    """One defect of a slice file, at the line (and event) where it shows."""

    kind: str
    message: str
    line: int | None = None
    seq: int | None = None
    stage: int = _EVENTS

    def describe(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        if self.seq is not None:
            where += f" seq={self.seq}"
        return f"{where} [{self.kind}]: {self.message}"


@dataclass
class SliceCheck:
    """The outcome of :func:`verify_slice`."""

    problems: list[SliceProblem] = field(default_factory=list)
    header: dict[str, Any] | None = None
    trailer: dict[str, Any] | None = None
    events: int = 0
    selected: int = 0
    proof: int = 0
    runs: int = 0
    signed_blocks: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    block_key_ids: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> SliceProblem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        """One line: verified or not, and what the slice holds."""
        if not self.ok:
            assert self.first is not None
            return (f"audit slice NOT verified ({len(self.problems)} problems); first: "
                    f"{self.first.describe()}")
        header, trailer = self.header or {}, self.trailer or {}
        declared = header.get("filters") or {}
        filters = ", ".join(f"{k}={declared[k]}" for k in FILTER_KEYS
                            if declared.get(k) is not None) or "none"
        span = (f"seq {self.first_seq}..{self.last_seq} in {self.runs} "
                f"run{'s' if self.runs != 1 else ''}" if self.events else "no events")
        return (f"audit slice verified: {header.get('kind')}, {self.events} events "
                f"({self.selected} selected, {self.proof} proof), {span}, "
                f"{self.signed_blocks} signed blocks; filters {filters}; exported at "
                f"{header.get('generated_at')} (chain head seq {header.get('through_seq')}), "
                f"signed by key {trailer.get('key_id')}")


@dataclass
class _State:
    check: SliceCheck
    verifier: Verifier
    filters: SliceFilters | None = None
    through_seq: int | None = None
    header_raw: bytes = b""
    events_digest: Any = field(default_factory=hashlib.sha256)
    prev_seq: int | None = None
    prev_hash: str | None = None
    prev_signed: bool = True
    prev_line: int = 0
    run_from: int | None = None
    found: list[SliceProblem] = field(default_factory=list)

    def add(self, kind: str, message: str, *, line: int | None = None,
            seq: int | None = None, stage: int = _EVENTS) -> None:
        self.found.append(SliceProblem(kind, message, line=line, seq=seq, stage=stage))


def verify_slice(lines: Iterable[bytes], verifier: Verifier) -> SliceCheck:
    """Check a slice file, given as its lines (bytes, each with its newline, as iterating a
    file opened in binary mode gives them), with the public keys of ``verifier``."""
    state = _State(check=SliceCheck(), verifier=verifier)
    trailer: tuple[int, bytes, dict[str, Any]] | None = None
    number = 0
    for number, raw in enumerate(lines, 1):
        if trailer is not None:
            state.add("after_trailer", "there are lines after the trailer", line=number,
                      stage=_FILE)
            break
        obj = _parse(raw)
        if number == 1:
            _header(state, raw, obj)
        elif isinstance(obj, dict) and obj.get("type") == "trailer":
            trailer = (number, raw, obj)
        else:
            state.events_digest.update(raw)
            _event(state, number, obj)
    if number == 0:
        state.add("empty", "the file is empty", stage=_FILE)
    _close_run(state)
    if trailer is None:
        if number:
            state.add("no_trailer", "the file ends without its signed trailer: it is "
                      "incomplete (an interrupted export) or was cut short", stage=_FILE)
    else:
        _trailer(state, *trailer)
    state.found.sort(key=lambda p: (p.stage, p.line if p.line is not None else 1 << 62))
    state.check.problems = state.found
    return state.check


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _header(state: _State, raw: bytes, obj: Any) -> None:
    state.header_raw = raw
    if not isinstance(obj, dict) or obj.get("type") != "header" \
            or obj.get("format") != FORMAT:
        state.add("bad_header", "the file does not start with an audit slice header",
                  line=1, stage=_FILE)
        return
    state.check.header = obj
    if obj.get("version") != VERSION:
        state.add("bad_header", f"slice format version {obj.get('version')!r} is not "
                  f"{VERSION}", line=1, stage=_FILE)
        return
    if set(obj) != HEADER_KEYS:
        state.add("bad_header", "the header's fields are not those of a slice header",
                  line=1, stage=_FILE)
        return
    try:
        filters = SliceFilters.from_json(obj["filters"])
    except ValueError as exc:
        state.add("bad_header", f"the header's filters are malformed: {exc}", line=1,
                  stage=_FILE)
        return
    if obj["kind"] != filters.kind:
        state.add("bad_header", f"the header says {obj['kind']!r} but its filters make a "
                  f"{filters.kind} slice", line=1, stage=_FILE)
    if isinstance(obj["through_seq"], int):
        state.through_seq = obj["through_seq"]
    state.filters = filters


def _event(state: _State, line: int, obj: Any) -> None:
    check = state.check
    record = obj.get("record") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or obj.get("type") != "event" or set(obj) != EVENT_KEYS \
            or obj["role"] not in (SELECTED, PROOF) or not isinstance(record, dict) \
            or set(record) != RECORD_KEYS or not isinstance(record["seq"], int) \
            or not isinstance(obj["hash"], str):
        state.add("malformed_line", "not an event line of an audit slice", line=line)
        state.prev_seq, state.prev_signed = None, True
        return
    seq: int = record["seq"]
    claimed: str = obj["hash"]
    if jsonable_hash(record) != claimed:
        state.add("hash_mismatch", "the event's content does not match its hash (changed "
                  "after it was sealed)", line=line, seq=seq)
    _place(state, line, seq, record, obj["role"])
    signature = obj["signature"]
    if signature is not None:
        check.signed_blocks += 1
        key_id = record["key_id"]
        if not isinstance(key_id, str) or key_id not in state.verifier.keys:
            state.add("unknown_key", f"the block is signed with key {key_id}, which is not "
                      "among the public keys given", line=line, seq=seq)
        elif not _canonical_base64(signature) or not state.verifier.verify(
                key_id, block_message(seq, claimed), signature):
            state.add("bad_signature", f"the block signature does not verify with key "
                      f"{key_id}", line=line, seq=seq)
        else:
            check.block_key_ids.add(key_id)
    if state.filters is not None:
        mismatch = state.filters.mismatch(record)
        if obj["role"] == SELECTED and mismatch is not None:
            state.add("not_matching", f"marked selected but does not match the slice's "
                      f"filters: {mismatch}", line=line, seq=seq)
        elif obj["role"] == PROOF and mismatch is None:
            state.add("hidden_match", "matches the slice's filters but is marked proof",
                      line=line, seq=seq)
    if state.through_seq is not None and seq > state.through_seq:
        state.add("beyond_head", f"seq {seq} is beyond the chain head the header names "
                  f"(seq {state.through_seq})", line=line, seq=seq)
    check.events += 1
    check.selected += obj["role"] == SELECTED
    check.proof += obj["role"] == PROOF
    if check.first_seq is None:
        check.first_seq = seq
    check.last_seq = seq
    state.prev_seq, state.prev_hash = seq, claimed
    state.prev_signed, state.prev_line = signature is not None, line


def _place(state: _State, line: int, seq: int, record: dict[str, Any], role: str) -> None:
    """Where the event stands in the chain relative to the one before it."""
    prev = state.prev_seq
    contiguous = state.filters is None or state.filters.contiguous
    if prev is not None and seq <= prev:
        state.add("out_of_order", f"seq {seq} comes after seq {prev}: the events are not in "
                  "chain order", line=line, seq=seq)
        return
    if prev is not None and seq == prev + 1:
        if record["prev_hash"] != state.prev_hash:
            state.add("broken_link", "prev_hash is not the hash of the event before it",
                      line=line, seq=seq)
        return
    if prev is not None and contiguous:
        missing = f"seq {prev + 1}" if seq == prev + 2 else f"seq {prev + 1} to {seq - 1}"
        state.add("seq_gap", f"{missing} missing before this event (a contiguous slice has "
                  "no gaps)", line=line, seq=seq)
        return
    # A new run: the one before must end signed, this one must begin with a selected event.
    _close_run(state)
    state.check.runs += 1
    state.run_from = seq
    if role != SELECTED:
        state.add("orphan_proof", "a run starts with a proof event: the selected event it "
                  "proves was removed", line=line, seq=seq)


def _canonical_base64(value: Any) -> bool:
    """True for base64 text written exactly as the signer writes it: decoders ignore stray
    characters and unused bits, and a signature spelled another way must not pass."""
    if not isinstance(value, str):
        return False
    try:
        return base64.b64encode(base64.b64decode(value, validate=True)).decode() == value
    except (binascii.Error, ValueError):
        return False


def _close_run(state: _State) -> None:
    if state.prev_seq is not None and not state.prev_signed:
        state.add("unsigned_run", f"events seq {state.run_from} to {state.prev_seq} are not "
                  "closed by a block signature (the end of their block is missing)",
                  line=state.prev_line, seq=state.prev_seq)
        state.prev_signed = True


def _trailer(state: _State, line: int, raw: bytes, obj: dict[str, Any]) -> None:
    check = state.check
    if raw != encode_line(obj) or set(obj) != TRAILER_KEYS:
        state.add("trailer_altered", "the trailer is not the canonical line that was signed",
                  line=line, stage=_FILE)
        return
    check.trailer = obj
    key_id = obj["key_id"]
    if obj["signature_algorithm"] != "Ed25519":
        state.add("bad_trailer", f"unknown signature algorithm "
                  f"{obj['signature_algorithm']!r}", line=line, stage=_FILE)
    elif not isinstance(key_id, str) or key_id not in state.verifier.keys:
        state.add("unknown_key", f"the trailer is signed with key {key_id}, which is not "
                  f"among the public keys given ({', '.join(sorted(state.verifier.keys))})",
                  line=line, stage=_FILE)
    elif not _canonical_base64(obj["signature"]) or not state.verifier.verify(
            key_id, trailer_message(obj), obj["signature"]):
        state.add("bad_trailer_signature", "the trailer's signature does not verify: the "
                  "trailer was changed or not signed by this key", line=line, stage=_FILE)
    if hashlib.sha256(state.header_raw).hexdigest() != obj["header_sha256"]:
        state.add("header_altered", "the header differs from the one the trailer signs "
                  "(its filters, period or chain head were changed)", line=1, stage=_FILE)
    if state.events_digest.hexdigest() != obj["events_sha256"]:
        state.add("events_altered", "the event lines differ from the ones the trailer signs "
                  "(an event line was added, removed, reordered or rewritten)", line=line,
                  stage=_TOTALS)
    actual = {"events": check.events, "selected": check.selected, "proof": check.proof,
              "runs": check.runs, "signed_blocks": check.signed_blocks,
              "first_seq": check.first_seq, "last_seq": check.last_seq,
              "block_key_ids": sorted(check.block_key_ids)}
    for name, value in actual.items():
        if obj[name] != value:
            state.add("count_mismatch", f"the trailer says {name} {obj[name]}, the file "
                      f"holds {value}", line=line, stage=_TOTALS)
