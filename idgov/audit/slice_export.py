"""Exporting a slice of the audit trail that an auditor verifies offline.

The file format (header, selected and proof events, signed trailer), what a contiguous and a
filtered slice hold and why, is described in :mod:`idgov.audit.slice_format`; the offline
check is :mod:`idgov.audit.slice_verify`. Here the slice is read from the database:

1. the chain head is read first; nothing sealed after it enters the slice, so the slice is
   the same however long the export takes;
2. the seq ranges are found: for a contiguous slice, from the first matching event to the
   signed end of the block of the last one; for a filtered slice, from each matching event
   not yet covered to the signed end of its block;
3. the ranges are streamed in seq order in keyset batches (memory stays flat); each event is
   marked ``selected`` or ``proof`` by the same predicate the verifier applies
   (:meth:`SliceFilters.matches`);
4. the trailer, with the digests of the header and of the event lines, the counts and the
   key ids, is signed with the service's audit signing key.

Reading only: nothing is flushed or committed. ``idgov audit export`` writes the file as
``FILE.partial`` and renames it when complete; ``GET /audit/export`` streams the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit import repository, slice_repository
from idgov.audit.canonical import GENESIS_HASH, to_jsonable
from idgov.audit.repository import Bind
from idgov.audit.schemas import AuditSliceFilter
from idgov.audit.service import chain_record, session_signer
from idgov.audit.signing import Signer
from idgov.audit.slice_format import (
    FORMAT,
    PROOF,
    SELECTED,
    VERSION,
    SliceFilters,
    encode_line,
    trailer_message,
)
from idgov.clock import Clock
from idgov.errors import ErrorList
from idgov.models.audit import AuditEvent

PARTIAL_SUFFIX = ".partial"
MEDIA_TYPE = "application/jsonl"
_LINES_PER_CHUNK = 500


def slice_filters(params: AuditSliceFilter) -> SliceFilters:
    """The filters of a validated request."""
    return SliceFilters(occurred_from=params.occurred_from, occurred_to=params.occurred_to,
                        object_type=params.object_type, object_id=params.object_id,
                        actor_id=params.actor_id, action=params.action)


def parse_slice_filters(raw: dict[str, Any]) -> SliceFilters:
    """Filters from text (the CLI's options, by query parameter name); InvalidInput with one
    field error per bad value, as the HTTP route answers 422."""
    errors = ErrorList()
    try:
        params = AuditSliceFilter.model_validate({k: v for k, v in raw.items()
                                                  if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            errors.add(".".join(str(p) for p in err["loc"]) or "filters", err["msg"])
        errors.raise_if_any("invalid filters for the audit slice")
        raise  # pragma: no cover - a ValidationError always has errors
    return slice_filters(params)


@dataclass
class SliceSummary:
    """What a finished slice holds (the trailer's figures)."""

    events: int = 0
    selected: int = 0
    proof: int = 0
    runs: int = 0
    signed_blocks: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    block_key_ids: set[str] = field(default_factory=set)
    trailer: dict[str, Any] = field(default_factory=dict)


def _ranges(bind: Bind, filters: SliceFilters, through_seq: int) -> Iterator[tuple[int, int]]:
    if filters.contiguous:
        found = slice_repository.matching_seq_range(bind, filters, through_seq)
        if found is not None:
            yield found[0], slice_repository.block_end(bind, found[1], through_seq)
        return
    covered = 0
    for seq in slice_repository.iter_matching_seqs(bind, filters, through_seq):
        if seq <= covered:
            continue
        covered = slice_repository.block_end(bind, seq, through_seq)
        yield seq, covered


def _lines(bind: Bind, *, filters: SliceFilters, signer: Signer, clock: Clock,
           summary: SliceSummary, batch_size: int) -> Iterator[bytes]:
    head = repository.read_head(bind)
    through_seq, through_hash = head if head is not None else (0, GENESIS_HASH)
    header = encode_line({
        "type": "header", "format": FORMAT, "version": VERSION,
        "generated_at": to_jsonable(clock.now()), "kind": filters.kind,
        "filters": filters.to_json(), "through_seq": through_seq,
        "through_hash": through_hash})
    yield header
    events_digest = hashlib.sha256()
    for first, last in _ranges(bind, filters, through_seq):
        for row in slice_repository.iter_chain(bind, first, last, batch_size=batch_size):
            # A Row exposes the attribute names chain_record() reads from an AuditEvent.
            record = chain_record(cast(AuditEvent, row))
            role = SELECTED if filters.matches(record) else PROOF
            line = encode_line({"type": "event", "role": role, "record": record,
                                "hash": row.hash, "signature": row.signature})
            events_digest.update(line)
            _count(summary, row.seq, role, row.signature, row.key_id)
            yield line
    trailer: dict[str, Any] = {
        "type": "trailer", "header_sha256": hashlib.sha256(header).hexdigest(),
        "events_sha256": events_digest.hexdigest(), "events": summary.events,
        "selected": summary.selected, "proof": summary.proof, "runs": summary.runs,
        "signed_blocks": summary.signed_blocks, "first_seq": summary.first_seq,
        "last_seq": summary.last_seq, "block_key_ids": sorted(summary.block_key_ids),
        "signature_algorithm": "Ed25519", "key_id": signer.key_id}
    trailer["signature"] = signer.sign(trailer_message(trailer))
    summary.trailer = trailer
    yield encode_line(trailer)


def _count(summary: SliceSummary, seq: int, role: str, signature: str | None,
           key_id: str | None) -> None:
    if summary.last_seq is None or seq != summary.last_seq + 1:
        summary.runs += 1
    if summary.first_seq is None:
        summary.first_seq = seq
    summary.last_seq = seq
    summary.events += 1
    if role == SELECTED:
        summary.selected += 1
    else:
        summary.proof += 1
    if signature is not None:
        summary.signed_blocks += 1
        if key_id is not None:
            summary.block_key_ids.add(key_id)


def stream_slice(bind: Bind, *, filters: SliceFilters, signer: Signer, clock: Clock,
                 summary: SliceSummary | None = None,
                 batch_size: int = 5000) -> Iterator[bytes]:
    """The slice's bytes, in chunks of a few hundred lines; ``summary`` (when given) holds the
    trailer's figures once the iterator is exhausted."""
    chunk: list[bytes] = []
    for line in _lines(bind, filters=filters, signer=signer, clock=clock,
                       summary=summary if summary is not None else SliceSummary(),
                       batch_size=batch_size):
        chunk.append(line)
        if len(chunk) >= _LINES_PER_CHUNK:
            yield b"".join(chunk)
            chunk = []
    if chunk:
        yield b"".join(chunk)


def write_slice(bind: Bind, path: Path, *, filters: SliceFilters, signer: Signer,
                clock: Clock) -> SliceSummary:
    """Write the slice to ``path``: as ``path.partial`` while it runs, renamed when complete
    (fsynced first). An interrupted export leaves only the partial file."""
    summary = SliceSummary()
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("wb") as fh:
        for chunk in stream_slice(bind, filters=filters, signer=signer, clock=clock,
                                  summary=summary):
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    partial.replace(path)
    return summary


def open_slice_stream(factory: sessionmaker[Session], *, filters: SliceFilters,
                      clock: Clock) -> Generator[bytes, None, None]:
    """:func:`stream_slice` in a session of its own, signed with the factory's audit signer,
    for a response that outlives the request's unit of work; the session is rolled back and
    closed when the iterator ends or is closed."""
    session = factory()
    signer = session_signer(session)
    if signer is None:  # pragma: no cover - the composition root always installs one
        session.close()
        raise RuntimeError("the session factory has no audit signer to sign the slice")
    return _owning(session, stream_slice(session, filters=filters, signer=signer,
                                         clock=clock))


def _owning(session: Session, stream: Iterator[bytes]) -> Generator[bytes, None, None]:
    try:
        yield from stream
    finally:
        session.rollback()
        session.close()
