"""create_app(): the web composition root. With cli.py, the only place that wires modules."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from certification.plugin import install as install_certification
from idgov import __version__
from idgov.approvals.roles import install as install_approver_role
from idgov.audit.signing import Signer
from idgov.auth.oidc import oidc_resolver
from idgov.clock import Clock
from idgov.config import Settings, get_settings
from idgov.provisioning.worker import start_embedded_worker
from idgov.reports.definitions import register_core_reports
from idgov.reports.tasks import register_jobs as register_report_jobs
from idgov.runtime import open_runtime
from idgov.siem.tasks import register_jobs as register_siem_jobs
from idgov.ui.app import install_pages
from idgov.web import problems
from idgov.web.deps import AppContext

# Every module of the identity core that serves HTTP, in OpenAPI order. Each has ``router``.
CORE_ROUTER_MODULES = (
    "idgov.auth.endpoints",
    "idgov.identities.endpoints",
    "idgov.access.endpoints",
    "idgov.groups.endpoints",
    "idgov.applications.endpoints",
    "idgov.catalog.endpoints",
    "idgov.assignments.endpoints",
    "idgov.request_types.endpoints",
    "idgov.requests.endpoints",
    "idgov.approvals.endpoints",
    "idgov.notifications.endpoints",
    "idgov.provisioning.endpoints",
    "idgov.reconciliation.endpoints",
    "idgov.fulfilment.endpoints",
    "idgov.sod_scan.endpoints",
    "idgov.birthright.endpoints",
    "idgov.lifecycle.source_endpoints",
    "idgov.lifecycle.endpoints",
    "idgov.lifecycle.flag_endpoints",
    "idgov.dayone.endpoints",
    "idgov.scim.endpoints",
    "idgov.audit.endpoints",
    "idgov.siem.endpoints",
    "idgov.reports.endpoints",
)


def core_routers() -> list[APIRouter]:
    """The routers of the identity core."""
    return [importlib.import_module(name).router for name in CORE_ROUTER_MODULES]


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    signer: Signer | None = None,
) -> FastAPI:
    """Build the web application. Tests pass their own engine, clock and signer."""
    settings = settings or get_settings()
    runtime = open_runtime(settings, engine=engine, clock=clock, signer=signer)
    engine = runtime.engine
    install_approver_role(runtime.clock)  # derive "approver" from waiting approval steps
    ctx = AppContext(settings=settings, engine=engine, session_factory=runtime.session_factory,
                     clock=runtime.clock, oidc=oidc_resolver(settings, clock=runtime.clock))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        """The embedded provisioning worker lives as long as the web process (make run)."""
        stop = start_embedded_worker(runtime) if settings.embedded_worker else None
        try:
            yield
        finally:
            if stop is not None:
                stop()

    app = FastAPI(
        lifespan=lifespan,
        title="idgov",
        version=__version__,
        description="Identity governance: who may hold which access, and the proof of it.",
    )
    app.state.ctx = ctx
    problems.install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Database down"}})
    def readyz() -> Response:
        """The database answers; 503 problem+json when it does not."""
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return problems.problem(503, "Not ready", "the database does not answer")
        return JSONResponse({"status": "ready"})

    for router in core_routers():
        app.include_router(router)
    register_siem_jobs()  # workers feed the audit trail to the syslog sinks
    register_core_reports()  # /reports: entitlements, point in time, SoD, JML, drift...
    register_report_jobs()  # workers drop scheduled exports into folders
    # Certification plugs in: its routes, and its periodic jobs run by the workers.
    app.include_router(install_certification())
    # Web pages at /ui/ ("/" redirects there): after every router, and after certification
    # registered its pages, so that the navigation and dashboard know them all.
    install_pages(app)
    return app
