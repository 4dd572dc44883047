"""Certification's routes, for the composition root (idgov/main.py) to mount."""

from __future__ import annotations

from fastapi import APIRouter

from certification import (
    endpoints_campaigns,
    endpoints_evidence,
    endpoints_review,
    endpoints_schedules,
)

router = APIRouter()
router.include_router(endpoints_campaigns.router)
router.include_router(endpoints_review.router)
router.include_router(endpoints_evidence.router)
router.include_router(endpoints_schedules.router)
