"""What other modules plug into the web pages: navigation, dashboard counters, page routers,
template folders. The core never imports certification; certification registers its pages
and its dashboard counters here from its plugin (called by the composition root).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy.orm import Session

from idgov.auth.caller import Caller
from idgov.clock import Clock


@dataclass(frozen=True)
class NavItem:
    """A link of the navigation, shown to callers holding any of ``capabilities``.

    ``person_only``: only for a signed-in person (an identity), not a service principal.
    ``order`` sorts the links (requester 100s, approver 200s, reviewer 300s, resolution
    400s, auditor 500s, administrator 600s).
    """

    key: str
    label: str
    href: str
    capabilities: tuple[str, ...]
    order: int = 1000
    person_only: bool = False

    def visible_to(self, caller: Caller) -> bool:
        if self.person_only and caller.identity_id is None:
            return False
        return any(caller.can(c) for c in self.capabilities)


@dataclass(frozen=True)
class Counter:
    """A number on the dashboard: ``count(session, caller, clock)``, a label and a link.

    Shown to callers holding any of ``capabilities``; ``count`` must apply the same row
    rules as the list it links to (a person's own items, or everything for a reader).
    ``tone``: "attention" when a non-zero number needs action, else "info".
    """

    key: str
    label: str
    href: str
    capabilities: tuple[str, ...]
    count: Callable[[Session, Caller, Clock], int]
    order: int = 1000
    tone: str = "attention"
    person_only: bool = False

    def visible_to(self, caller: Caller) -> bool:
        if self.person_only and caller.identity_id is None:
            return False
        return any(caller.can(c) for c in self.capabilities)


_NAV: dict[str, NavItem] = {}
_COUNTERS: dict[str, Counter] = {}
_ROUTERS: list[APIRouter] = []
_TEMPLATE_DIRS: list[Path] = []


def register_nav(item: NavItem) -> None:
    """Add (or replace, by key) a navigation link."""
    _NAV[item.key] = item


def register_counter(counter: Counter) -> None:
    """Add (or replace, by key) a dashboard counter."""
    _COUNTERS[counter.key] = counter


def register_page_router(router: APIRouter) -> None:
    """A router of pages from outside ``idgov.ui.pages`` (certification's, say). Routers
    registered before ``install_pages(app)`` is called are mounted by it."""
    if router not in _ROUTERS:
        _ROUTERS.append(router)


def register_template_dir(path: Path) -> None:
    """A folder of templates searched after idgov's own (names should be prefixed by the
    area, e.g. ``certification/inbox.html``, to avoid clashes)."""
    if path not in _TEMPLATE_DIRS:
        _TEMPLATE_DIRS.append(path)


def nav_for(caller: Caller) -> list[NavItem]:
    return sorted((i for i in _NAV.values() if i.visible_to(caller)),
                  key=lambda i: (i.order, i.label))


def counters_for(caller: Caller) -> list[Counter]:
    return sorted((c for c in _COUNTERS.values() if c.visible_to(caller)),
                  key=lambda c: (c.order, c.label))


def page_routers() -> list[APIRouter]:
    return list(_ROUTERS)


def template_dirs() -> list[Path]:
    return list(_TEMPLATE_DIRS)
