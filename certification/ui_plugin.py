"""Plug the certification pages into the core's web pages (``idgov.ui.registry``): the
inbox and campaign routers, the template folder, the navigation links and the dashboard
counter of open reviews. Called by :func:`certification.plugin.install`, which the web
composition root runs before ``idgov.ui.app.install_pages``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import review_repository as repo
from certification.models import Campaign, ReviewItem
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.ui import registry
from idgov.ui.repository import count

TEMPLATES = Path(__file__).parent / "templates"


def open_reviews(session: Session, caller: Caller, _clock: Clock) -> int:
    """The caller's items still pending in active campaigns (the inbox's row rule)."""
    if caller.identity_id is None:
        return 0
    return count(session, select(ReviewItem.id)
                 .join(Campaign, Campaign.id == ReviewItem.campaign_id)
                 .where(Campaign.state == "active", repo.my_items(caller.identity_id),
                        ReviewItem.decision == "pending", repo.open_items()))


def register_pages() -> None:
    """Register the certification pages with the core's page registry."""
    from certification import ui, ui_admin

    registry.register_page_router(ui.router)
    registry.register_page_router(ui_admin.router)
    registry.register_template_dir(TEMPLATES)
    registry.register_nav(registry.NavItem(
        key="certification", label="Certifications", href="/ui/certification",
        capabilities=("certification:review", "certification:read", "certification:admin"),
        order=300))
    registry.register_nav(registry.NavItem(
        key="admin-campaigns", label="Campaigns", href="/ui/certification/manage",
        capabilities=("certification:admin",), order=640))
    registry.register_counter(registry.Counter(
        key="open-reviews", label="Open reviews", href="/ui/certification",
        capabilities=("certification:review",), count=open_reviews, order=300,
        person_only=True))
