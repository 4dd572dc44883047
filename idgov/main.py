"""create_app(): the web composition root. With cli.py, the only place that wires modules."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine, text

from idgov import __version__
from idgov.audit.service import install_sealer
from idgov.audit.signing import Signer, load_signer
from idgov.clock import Clock, SystemClock
from idgov.config import Settings, get_settings
from idgov.db.session import make_engine, make_session_factory
from idgov.web import problems
from idgov.web.deps import AppContext


def core_routers() -> list[APIRouter]:
    """Every router of the identity core, in the order they appear in the OpenAPI document."""
    from idgov.identities.endpoints import router as identities

    return [identities]


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    signer: Signer | None = None,
) -> FastAPI:
    """Build the web application. Tests pass their own engine, clock and signer."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    install_sealer(factory, signer or load_signer(settings.signing_key_path))
    ctx = AppContext(settings=settings, engine=engine, session_factory=factory,
                     clock=clock or SystemClock())

    app = FastAPI(
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
    def readyz() -> dict[str, str]:
        """The database answers."""
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ready"}

    for router in core_routers():
        app.include_router(router)
    return app
