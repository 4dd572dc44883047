"""Rubber-stamping: reviewers who certify everything, very fast or in bulk, high-risk
items included. A report per campaign with the evidence numbers per reviewer.

The signals, over a reviewer's decided items of the campaign:

- ``certifies_everything``: the share certified is at least :data:`CERTIFY_ALL_SHARE`;
- ``very_fast``: the median time between consecutive decisions is below
  :data:`FAST_MEDIAN_SECONDS` (a bulk decision counts as gaps of zero);
- ``bulk``: at least :data:`BULK_SHARE` of the decisions were taken in batches, i.e. share
  their decision instant with at least :data:`BULK_BATCH_MIN` - 1 other items (a bulk
  decision stamps every item it decides with the same instant; two single decisions never
  share one);
- ``high_risk_included``: items of risk high or critical were certified.

A reviewer is ``suspected`` with at least :data:`MIN_DECISIONS` decisions, when they certify
everything and do it very fast or in bulk; the severity is ``high`` when high-risk items
were certified too, ``medium`` otherwise. Fewer decisions are not evidence enough.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import review_repository as repo
from certification.models import ReviewItem
from certification.review_rules import campaign_or_404

MIN_DECISIONS = 10
CERTIFY_ALL_SHARE = 0.98
FAST_MEDIAN_SECONDS = 5.0
BULK_SHARE = 0.5
BULK_BATCH_MIN = 5
HIGH_RISKS = ("high", "critical")

THRESHOLDS = {"min_decisions": float(MIN_DECISIONS), "certify_all_share": CERTIFY_ALL_SHARE,
              "fast_median_seconds": FAST_MEDIAN_SECONDS, "bulk_share": BULK_SHARE,
              "bulk_batch_min": float(BULK_BATCH_MIN)}


@dataclass
class ReviewerEvidence:
    """What one reviewer's decisions in a campaign look like."""

    reviewer_id: uuid.UUID
    reviewer_name: str | None = None
    items: int = 0
    decided: int = 0
    certified: int = 0
    revoked: int = 0
    high_risk_certified: int = 0
    median_seconds_between_decisions: float | None = None
    bulk_share: float = 0.0
    signals: list[str] = field(default_factory=list)
    suspected: bool = False
    severity: str | None = None

    @property
    def certify_share(self) -> float:
        return round(self.certified / self.decided, 4) if self.decided else 0.0


@dataclass
class Report:
    campaign_id: uuid.UUID
    thresholds: dict[str, float]
    reviewers: list[ReviewerEvidence]


def _timing(instants: list[datetime]) -> tuple[float | None, float]:
    """The median gap between consecutive decisions (seconds) and the share of decisions
    taken in batches."""
    if not instants:
        return None, 0.0
    ordered = sorted(instants)
    gaps = [(b - a).total_seconds() for a, b in pairwise(ordered)]
    batches = Counter(ordered)
    in_bulk = sum(n for n in batches.values() if n >= BULK_BATCH_MIN)
    return (median(gaps) if gaps else None), round(in_bulk / len(ordered), 4)


def judge(evidence: ReviewerEvidence) -> ReviewerEvidence:
    """Set the signals, the suspicion and its severity from the numbers (pure)."""
    signals = []
    if evidence.decided and evidence.certify_share >= CERTIFY_ALL_SHARE:
        signals.append("certifies_everything")
    gap = evidence.median_seconds_between_decisions
    if gap is not None and gap < FAST_MEDIAN_SECONDS:
        signals.append("very_fast")
    if evidence.bulk_share >= BULK_SHARE:
        signals.append("bulk")
    if evidence.high_risk_certified:
        signals.append("high_risk_included")
    evidence.signals = signals
    evidence.suspected = (evidence.decided >= MIN_DECISIONS
                          and "certifies_everything" in signals
                          and ("very_fast" in signals or "bulk" in signals))
    evidence.severity = (("high" if evidence.high_risk_certified else "medium")
                         if evidence.suspected else None)
    return evidence


def _rows(session: Session, campaign_id: uuid.UUID) -> Iterable[tuple[uuid.UUID, str, str,
                                                                        datetime | None]]:
    stmt = (select(ReviewItem.reviewer_id, ReviewItem.decision, ReviewItem.risk,
                   ReviewItem.decided_at)
            .where(ReviewItem.campaign_id == campaign_id, ReviewItem.reviewer_id.is_not(None))
            .order_by(ReviewItem.reviewer_id))
    for row in session.execute(stmt.execution_options(yield_per=10_000)):
        if row[0] is not None:
            yield row[0], row[1], row[2], row[3]


def report(session: Session, *, campaign_id: uuid.UUID) -> Report:
    """The rubber-stamping report of a campaign: every reviewer with items, their
    numbers, signals and whether they are suspected (suspects first). NotFound for an
    unknown campaign."""
    campaign_or_404(session, campaign_id)
    found: list[ReviewerEvidence] = []
    current: ReviewerEvidence | None = None
    instants: list[datetime] = []

    def finish() -> None:
        if current is not None:
            gap, bulk = _timing(instants)
            current.median_seconds_between_decisions = gap
            current.bulk_share = bulk
            found.append(judge(current))

    for reviewer_id, decision, risk, decided_at in _rows(session, campaign_id):
        if current is None or current.reviewer_id != reviewer_id:
            finish()
            current, instants = ReviewerEvidence(reviewer_id=reviewer_id), []
        current.items += 1
        if decision == "pending":
            continue
        current.decided += 1
        if decided_at is not None:
            instants.append(decided_at)
        if decision == "certify":
            current.certified += 1
            current.high_risk_certified += risk in HIGH_RISKS
        else:
            current.revoked += 1
    finish()
    names = repo.names(session, [e.reviewer_id for e in found])
    for evidence in found:
        evidence.reviewer_name = names.get(evidence.reviewer_id)
    found.sort(key=lambda e: (not e.suspected, e.severity != "high", e.reviewer_name or ""))
    return Report(campaign_id=campaign_id, thresholds=dict(THRESHOLDS), reviewers=found)

