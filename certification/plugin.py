"""What the composition roots plug into the core: certification's routes and jobs."""

from __future__ import annotations

from fastapi import APIRouter

from certification.tasks import register_jobs


def install() -> APIRouter:
    """Register certification's periodic jobs with the core and return its router."""
    from certification.endpoints import router

    register_jobs()
    return router
