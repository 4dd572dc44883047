"""Audit trail schemas: events as the chain holds them, list filters, a verification report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn


class AuditEventRead(ReadModel):
    """One event of the trail, with the fields its hash covers and its place in the chain."""

    id: uuid.UUID
    seq: int | None = Field(description="Position in the chain; null until sealed")
    occurred_at: datetime
    actor_type: str = Field(description="identity, service_principal, system or token")
    actor_id: str | None
    actor_name: str | None
    action: str = Field(description="What happened, e.g. identity.update")
    object_type: str
    object_id: str | None
    before: dict[str, Any] | None = Field(description="The object's fields before the change")
    after: dict[str, Any] | None = Field(description="The object's fields after the change")
    context: dict[str, Any] | None
    prev_hash: str | None = Field(description="Hash of the event before it (64 zeros for seq 1)")
    hash: str | None = Field(description="SHA-256 of the event's canonical JSON record")
    key_id: str | None = Field(description="Id of the Ed25519 key that sealed the event")
    signature: str | None = Field(
        description="Block signature (base64) over the chain head at this event; set on the "
        "last event of each sealed block")


AuditEventPage = PageOut[AuditEventRead]


class AuditEventFilter(ListParams):
    """Filters of the event list; all given filters must match. Events come in seq order."""

    model_config = ConfigDict(populate_by_name=True)

    object_type: str | None = Field(default=None, max_length=64)
    object_id: str | None = Field(default=None, max_length=64)
    actor_id: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=100)
    occurred_from: AwareDatetime | None = Field(
        default=None, alias="from", description="Events that occurred at or after this instant")
    occurred_to: AwareDatetime | None = Field(
        default=None, alias="to", description="Events that occurred before this instant")


class AuditSliceFilter(StrictIn):
    """Filters of an audit slice export (``GET /audit/export``, ``idgov audit export``): the
    same as the event list's, without paging. With only ``from``/``to`` (or nothing) the
    slice is contiguous; with an object, actor or action it is a series of signed runs."""

    model_config = ConfigDict(populate_by_name=True)

    object_type: str | None = Field(default=None, max_length=64)
    object_id: str | None = Field(default=None, max_length=64)
    actor_id: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=100)
    occurred_from: AwareDatetime | None = Field(
        default=None, alias="from", description="Events that occurred at or after this instant")
    occurred_to: AwareDatetime | None = Field(
        default=None, alias="to", description="Events that occurred before this instant")

    @model_validator(mode="after")
    def _period_runs_forward(self) -> AuditSliceFilter:
        if (self.occurred_from is not None and self.occurred_to is not None
                and self.occurred_to <= self.occurred_from):
            raise ValueError("'to' must be later than 'from'")
        return self


class ChainProblemRead(ReadModel):
    """One defect of the chain, at the event where it shows."""

    kind: str = Field(description="seq_gap, broken_link, hash_mismatch, unknown_key, "
                      "bad_signature, unsigned_tail, head_mismatch or unsealed")
    message: str
    seq: int | None
    event_id: uuid.UUID | None


class ChainVerificationRead(ReadModel):
    """The outcome of verifying the whole chain."""

    ok: bool = Field(description="True when no problem was found")
    checked_at: datetime
    events: int = Field(description="Sealed events read")
    signed_blocks: int
    signatures_by_key: dict[str, int] = Field(description="Valid block signatures per key id")
    first_seq: int | None
    last_seq: int | None
    last_hash: str | None = Field(description="Hash of the last event: note it to detect a "
                                  "later truncation of the chain")
    head_seq: int | None
    head_hash: str | None
    unsealed_pending: int = Field(description="Events awaiting sealing within the grace period")
    unsealed_stale: int = Field(description="Events left unsealed past the grace period")
    problem_count: int
    problems: list[ChainProblemRead] = Field(description="The first problems found, by seq")
    first_bad: ChainProblemRead | None = Field(description="The problem with the lowest seq")
