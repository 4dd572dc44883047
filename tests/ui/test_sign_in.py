"""Signing in and out in the browser; the dashboard of each persona."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import DemoWorld, LiveServer


def test_demo_sign_in_shows_the_persona_dashboard_and_sign_out_ends_it(
        live: LiveServer, demo: DemoWorld, new_page: Any, shoot: Any) -> None:
    page = new_page()
    page.goto("/ui/requests")
    assert page.url.endswith("/ui/sign-in?next=/ui/requests")  # signed out: sent to sign in
    shoot(page, "sign-in")
    page.locator("button[data-persona=manager]").click()
    assert page.url.endswith("/ui/requests")  # back where they wanted to go
    page.goto("/ui/")
    assert page.get_by_test_id("signed-in-as").inner_text() != ""
    counters = page.locator("[data-counter]")
    keys = [counters.nth(i).get_attribute("data-counter") for i in range(counters.count())]
    assert keys == ["open-requests", "unread-notifications"] or "waiting-approvals" in keys
    shoot(page, "dashboard-manager")
    page.get_by_role("button", name="Sign out").click()
    assert "/ui/sign-in" in page.url
    page.goto("/ui/")
    assert "/ui/sign-in" in page.url
