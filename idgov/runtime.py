"""The pieces a process needs to talk to the database: used by the CLI and the web app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.service import install_sealer
from idgov.audit.signing import Signer, load_signer
from idgov.clock import Clock, SystemClock
from idgov.config import Settings
from idgov.db.session import make_engine, make_session_factory


@dataclass
class Runtime:
    """An engine, a session factory whose sessions seal audit events, and a clock."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock

    def close(self) -> None:
        self.engine.dispose()


def open_runtime(settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None,
                 signer: Signer | None = None) -> Runtime:
    """Connect to the configured database; audit events are signed with the configured key."""
    engine = engine or make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    install_sealer(factory, signer or load_signer(settings.signing_key_path))
    return Runtime(settings=settings, engine=engine, session_factory=factory,
                   clock=clock or SystemClock())
