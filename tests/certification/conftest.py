"""Fixtures shared by the certification tests (add yours below; keep others')."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from idgov.audit.signing import Signer
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.main import create_app
from tests.certification.review_world import world  # noqa: F401 - H-review's fixture


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FixedClock, signer: Signer) -> FastAPI:
    """The application with the certification routes (until the composition root mounts
    them)."""
    from certification.endpoints_campaigns import router as campaigns

    application = create_app(settings, engine=engine, clock=clock, signer=signer)
    paths = {getattr(r, "path", None) for r in application.routes}
    if "/certification/campaigns" not in paths:
        application.include_router(campaigns)
    from certification.endpoints_review import router as review

    if "/certification/items/{item_id}" not in paths:
        application.include_router(review)
    return application
