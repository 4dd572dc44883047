"""Reviewing schemas: a reviewer's page of items, one item, decisions (one, bulk),
reassignment, sign-off, progress and the rubber-stamping report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from idgov.web.schemas import PageOut, StrictIn

Decision = Literal["pending", "certify", "revoke"]
Risk = Literal["low", "medium", "high", "critical"]


class ItemSelection(StrictIn):
    """Filters over a campaign's items, shared by the page and by bulk decisions."""

    decision: Decision | None = Field(default=None, description="Only items with this decision")
    risk: Risk | None = Field(default=None, description="Only items of this risk or higher")
    application_id: uuid.UUID | None = None
    sod: bool | None = Field(default=None,
                             description="true: only items taking part in an SoD conflict")
    privileged: bool | None = None
    identity_id: uuid.UUID | None = Field(default=None, description="The person whose access")
    reviewer_id: uuid.UUID | None = Field(
        default=None, description="Only this reviewer's items (readers: any reviewer)")
    q: str | None = Field(default=None, max_length=200,
                          description="Part of the person's name or of the access' name "
                                      "(composition items: of the role or what it includes)")


class ItemFilter(ItemSelection):
    """The page's query: the filters, the page size (at most 500) and the cursor."""

    limit: int | None = Field(default=None, ge=1, le=500, description="Page size (default 50)")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")


class ReviewItemRead(BaseModel):
    """One line of a reviewer's page: who, what access, its risk, the decision. An item of
    a role composition campaign reviews a link instead (``role_entitlement_id`` or
    ``role_inclusion_id``): it has no assignment and no person, ``role_id``/``role_name``
    name the role whose composition it is and ``access_name`` what the link includes."""

    id: uuid.UUID
    campaign_id: uuid.UUID
    assignment_id: uuid.UUID | None = Field(description="The assignment reviewed (none for a "
                                                        "composition item)")
    role_entitlement_id: uuid.UUID | None = Field(
        default=None, description="Composition items: the role -> entitlement link reviewed")
    role_inclusion_id: uuid.UUID | None = Field(
        default=None, description="Composition items: the role -> included role link reviewed")
    identity_id: uuid.UUID | None = Field(description="The person whose access it is (none "
                                                      "for a composition item)")
    identity_name: str | None = Field(description="The person's display name")
    role_id: uuid.UUID | None
    role_name: str | None = Field(default=None, description="Composition items: the role "
                                                            "whose composition is reviewed")
    entitlement_id: uuid.UUID | None
    included_role_id: uuid.UUID | None = Field(
        default=None, description="Composition items: the role the link includes")
    access_name: str = Field(description="The name of the role or entitlement (composition "
                                         "items: of what the link includes)")
    application_id: uuid.UUID | None
    application_name: str | None
    source: str = Field(description="How the access was granted: request, birthright, ...; "
                                    "catalog for a composition item")
    risk: str
    privileged: bool
    sod_conflict: bool
    reviewer_id: uuid.UUID | None
    reviewer_group_id: uuid.UUID | None
    original_reviewer_id: uuid.UUID | None = Field(
        description="The reviewer before the first reassignment")
    decision: str = Field(description="pending, certify or revoke")
    decided_at: datetime | None
    decided_by: str | None
    comment: str | None
    remediation: str
    final: bool = Field(description="The reviewer signed off (or the campaign closed): the "
                                    "decision can no longer change")


class ReviewItemDetail(ReviewItemRead):
    """One item with what generation fixed for the reviewer: how it was granted (request
    number, approvers), last certified, peers' share, SoD context, last use; for a
    composition item: the link's start and last certification, what it includes and how
    many people hold the role (see certification.composition)."""

    context: dict[str, Any]


ReviewItemPage = PageOut[ReviewItemRead]


class DecisionIn(StrictIn):
    decision: Decision = Field(description="certify (keep), revoke, or pending (undo)")
    comment: str | None = Field(
        default=None, max_length=4000,
        description="Mandatory to revoke privileged access and to certify an item in an SoD "
                    "conflict")


class BulkDecisionIn(DecisionIn):
    """One decision over many items: the listed ``item_ids``, or those matching ``filter``
    (every one of the caller's items still open when neither is given)."""

    item_ids: list[uuid.UUID] | None = Field(default=None, max_length=100_000)
    filter: ItemSelection | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> BulkDecisionIn:
        if self.item_ids is not None and self.filter is not None:
            raise ValueError("give item_ids or filter, not both")
        return self


class BulkDecisionOut(BaseModel):
    decided: int = Field(description="How many items received the decision")


class ReassignIn(StrictIn):
    to_identity_id: uuid.UUID = Field(description="The new reviewer: an active person, not "
                                                  "the person whose access it is")
    comment: str | None = Field(default=None, max_length=4000)


class SignOffIn(StrictIn):
    """The optional body of a sign-off. Without it (or with ``{}``) the caller signs off
    their own part; an administrator (``certification:admin``) names the reviewer to sign
    off for, with a reason."""

    reviewer_id: uuid.UUID | None = Field(
        default=None, description="The reviewer whose part is signed off (administrators: "
                                  "anyone; others: only themselves)")
    reason: str | None = Field(default=None, max_length=2000,
                               description="Why; mandatory when signing off for someone else")


class SignoffRead(BaseModel):
    campaign_id: uuid.UUID
    reviewer_id: uuid.UUID
    signed_off_at: datetime
    applied: dict[str, int] = Field(description="What the decisions did: certified, "
                                                "requested (revocations), escalated")
    campaign_state: str = Field(description="closed when this was the last reviewer")
    signed_off_by: str = Field(default="", description="Who signed off (audit label): the "
                                                       "reviewer, or an administrator")
    on_behalf: bool = Field(default=False, description="An administrator signed off for the "
                                                       "reviewer")


class ReviewerProgress(BaseModel):
    reviewer_id: uuid.UUID | None
    reviewer_name: str | None
    reviewer_group_id: uuid.UUID | None = Field(
        description="Items for a group, not yet taken by one of its members")
    total: int
    pending: int
    certify: int
    revoke: int
    signed_off_at: datetime | None


class ProgressRead(BaseModel):
    campaign_id: uuid.UUID
    state: str
    total: int
    by_decision: dict[str, int]
    reviewers_signed_off: int
    reviewers_total: int
    reviewers: list[ReviewerProgress]


class ReviewerStamping(BaseModel):
    reviewer_id: uuid.UUID
    reviewer_name: str | None
    items: int
    decided: int
    certified: int
    revoked: int
    certify_share: float
    high_risk_certified: int = Field(description="Items of risk high or critical certified")
    median_seconds_between_decisions: float | None
    bulk_share: float = Field(description="Share of the decisions taken in batches")
    signals: list[str] = Field(description="certifies_everything, very_fast, bulk, "
                                           "high_risk_included")
    suspected: bool
    severity: str | None = Field(description="high when high-risk items were certified too")


class StampingReport(BaseModel):
    campaign_id: uuid.UUID
    thresholds: dict[str, float]
    reviewers: list[ReviewerStamping]
