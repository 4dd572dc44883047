"""Browser tests: the app served by uvicorn on a free port, Debian's Chromium driven by
Playwright, a seeded world (the demo organisation), people signed in through the pages.

Fixtures: ``ui_app``, ``live`` (LiveServer), ``demo`` (DemoWorld), ``browser``,
``signed_in(identity_id)`` / ``signed_in_principal(principal_id)`` (a Page),
``shoot(page, name)`` (a screenshot saved as a test artefact under ``$IDGOV_ARTEFACTS``,
default ``tests/artefacts/screenshots``). Chromium missing: skip, or fail when
``IDGOV_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.signing import Signer
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.main import create_app
from idgov.models.identity import Identity
from idgov.setup.demo import load_demo
from idgov.ui import repository as ui_repository
from tests import databases

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTEFACTS = Path(os.environ.get("IDGOV_ARTEFACTS")
                 or Path(__file__).resolve().parents[1] / "artefacts" / "screenshots")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """The application served over real HTTP in a thread of the test process."""

    url: str
    app: FastAPI
    factory: sessionmaker[Session]
    clock: FixedClock


@pytest.fixture
def ui_app(settings: Settings, engine: Engine, clock: FixedClock, signer: Signer) -> FastAPI:
    """The API application with the pages mounted and the demo sign-in on."""
    settings = settings.model_copy(update={"ui_demo_sign_in": True})
    return create_app(settings, engine=engine, clock=clock, signer=signer)


@pytest.fixture
def live(ui_app: FastAPI, clock: FixedClock) -> Iterator[LiveServer]:
    port = free_port()
    config = uvicorn.Config(ui_app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ui-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live server did not start")
        time.sleep(0.02)  # waiting for a real server thread, not for application time
    factory: sessionmaker[Session] = ui_app.state.ctx.session_factory
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", app=ui_app, factory=factory,
                         clock=clock)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@dataclass
class DemoWorld:
    """The demo organisation as loaded: personas by key, people by display name."""

    personas: dict[str, uuid.UUID] = field(default_factory=dict)
    by_name: dict[str, uuid.UUID] = field(default_factory=dict)
    manager_of: dict[uuid.UUID, uuid.UUID | None] = field(default_factory=dict)


@pytest.fixture
def demo(live: LiveServer) -> DemoWorld:
    """The demo organisation (idgov demo), loaded through the services at the fixed clock."""
    with unit_of_work(live.factory) as session:
        load_demo(session, clock=live.clock)
    world = DemoWorld()
    with unit_of_work(live.factory) as session:
        world.personas = {p.key: p.person.id for p in ui_repository.personas(session)}
        for row in session.query(Identity).all():
            world.by_name[row.display_name] = row.id
            world.manager_of[row.id] = row.manager_id
    return world


@pytest.fixture(scope="session")
def _playwright() -> Iterator[Any]:
    if not CHROMIUM.exists():
        databases.missing("Chromium (/usr/bin/chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        databases.missing("Playwright (pip install playwright)")
        raise
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(_playwright: Any) -> Iterator[Any]:
    browser = _playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser: Any, live: LiveServer) -> Iterator[Callable[[], Any]]:
    """Pages in fresh browser contexts (own cookies), closed after the test."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(base_url=live.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _sign_in(page: Any, subject: str) -> Any:
    page.goto("/ui/sign-in")
    token = page.locator("input[name=csrf_token]").first.input_value()
    response = page.request.post("/ui/sign-in/demo", form={
        "csrf_token": token, "subject": subject, "next": "/ui/"})
    assert response.ok, response.text()
    page.goto("/ui/")
    return page


@pytest.fixture
def signed_in(new_page: Callable[[], Any]) -> Callable[[uuid.UUID], Any]:
    """``signed_in(identity_id)``: a Page whose browser signed in as that person."""
    return lambda identity_id: _sign_in(new_page(), f"identity:{identity_id}")


@pytest.fixture
def signed_in_principal(new_page: Callable[[], Any]) -> Callable[[uuid.UUID], Any]:
    """``signed_in_principal(principal_id)``: a Page signed in as a service principal."""
    return lambda principal_id: _sign_in(new_page(), f"principal:{principal_id}")


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``shoot(page, "name")``: a full-page screenshot saved as a test artefact."""
    backend = getattr(getattr(request.node, "callspec", None), "params", {}).get("db_url", "")
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.originalname or request.node.name)

    def take(page: Any, name: str) -> Path:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / f"{test}-{backend or 'db'}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

