"""What the composition roots plug into the core: certification's routes and jobs."""

from __future__ import annotations

from fastapi import APIRouter

from certification.reports import register_reports
from certification.tasks import register_jobs


def register() -> None:
    """Plug certification into the core's registries: its periodic jobs (run by the
    workers) and its reports (exported by ``idgov reports`` and ``/reports``)."""
    register_jobs()
    register_reports()


def install() -> APIRouter:
    """Register certification with the core (:func:`register`), register its web pages
    with the core's page registry (mounted by ``idgov.ui.app.install_pages``), and return
    its API router."""
    from certification.endpoints import router
    from certification.ui_plugin import register_pages

    register()
    register_pages()
    return router
