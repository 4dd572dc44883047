"""The operations personas in the browser: a manager certifies (bulk, revoke, sign-off), an
administrator confirms a held HR feed and runs campaigns, an auditor exports a report with
its manifest and searches the audit trail; the pages refuse what a persona may not do."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import func, select

from certification.models import ReviewerSignoff, ReviewItem
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from idgov.models.hr import FeedRun
from tests.ui.conftest import DemoWorld, LiveServer
from tests.ui.ops_world import grant, held_feed_run, manager_campaign, reviewer_with_privileged_item


def _nav(page: Any, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def _items(live: LiveServer, reviewer: Any) -> dict[Any, tuple[bool, str, str | None]]:
    with unit_of_work(live.factory) as session:
        return {row[0]: (row[1], row[2], row[3]) for row in session.execute(
            select(ReviewItem.id, ReviewItem.privileged, ReviewItem.decision,
                   ReviewItem.comment).where(ReviewItem.reviewer_id == reviewer))}


def test_a_manager_completes_a_certification_with_a_bulk_action_and_a_revoke(
        live: LiveServer, demo: DemoWorld, signed_in: Any, shoot: Any) -> None:
    campaign = manager_campaign(live)
    reviewer = reviewer_with_privileged_item(live, campaign)
    before = _items(live, reviewer)
    privileged = sorted(i for i, (p, _d, _c) in before.items() if p)[0]
    page = signed_in(reviewer)
    _nav(page, "Certifications")
    shoot(page, "inbox")
    page.get_by_role("link", name="Quarterly access review").click()
    expect(page.locator("tr[id^=item-]")).to_have_count(len(before))
    shoot(page, "campaign")

    # A filter: high risk and above only.
    page.locator("select[name=risk]").select_option("high")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**risk=high**")
    risks = {page.locator("tr[id^=item-]").nth(i).get_attribute("data-risk")
             for i in range(page.locator("tr[id^=item-]").count())}
    assert risks <= {"high", "critical"}
    shoot(page, "filtered")
    page.get_by_role("link", name="Clear").click()
    page.wait_for_url(f"**/campaigns/{campaign}")

    # Revoking privileged access needs a comment: the error shows at the item's field.
    row = page.locator(f"#item-{privileged}")
    row.get_by_role("button", name="Revoke").click()
    error = page.locator(f"#item-{privileged} [data-field-error]")
    expect(error).to_have_text("mandatory to revoke privileged access")
    assert _items(live, reviewer)[privileged][1] == "pending"  # nothing changed
    shoot(page, "revoke-needs-comment")
    row = page.locator(f"#item-{privileged}")
    page.locator(f"#comment-{privileged}").fill("Left the payments team in January")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".notice.success")).to_contain_text("Revoked:")

    # Bulk: select everything shown but the revoked item, certify with a comment.
    page.locator("#select-all").check()
    page.locator(f"#item-{privileged} input[name=item_ids]").uncheck()
    page.locator("#bulk-comment").fill("Still needed in their role")
    page.get_by_role("button", name="Certify selected").click()
    expect(page.locator(".notice.success")).to_have_text(f"{len(before) - 1} items certified.")
    assert page.locator("#progress-summary").inner_text().startswith(
        f"{len(before)} of {len(before)} decided")
    shoot(page, "decided")

    page.get_by_role("button", name="Sign off my review").click()
    expect(page.locator(".notice.success")).to_contain_text("Signed off")
    expect(page.locator("#my-signoff")).to_be_visible()
    shoot(page, "signed-off")

    after = _items(live, reviewer)
    assert after[privileged][1:] == ("revoke", "Left the payments team in January")
    assert {d for i, (_p, d, _c) in after.items() if i != privileged} == {"certify"}
    with unit_of_work(live.factory) as session:
        assert session.get(ReviewerSignoff, (campaign, reviewer)) is not None
        decided = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "review_item.decide"))
        assert decided == len(before)  # the refused revoke wrote nothing


def test_an_administrator_confirms_a_held_hr_feed_and_launches_a_campaign(
        live: LiveServer, demo: DemoWorld, signed_in: Any, shoot: Any) -> None:
    admin = grant(live, demo, "administrator")
    run_id, leaving = held_feed_run(live)
    page = signed_in(admin)
    _nav(page, "HR feed")
    expect(page.locator(f"#run-{run_id}")).to_contain_text("held")
    shoot(page, "hr-runs")
    page.locator(f"#run-{run_id} a").click()
    expect(page.locator("#hold-reason")).to_contain_text("5 of 20 active identities would leave")
    assert page.locator("#changes tr[data-kind=leaver]").count() == leaving
    shoot(page, "held-run")
    page.get_by_label("Note").fill("They left at the end of the quarter")
    page.get_by_role("button", name="Confirm and apply").click()
    expect(page.locator("#run-state")).to_have_text("applied")
    shoot(page, "confirmed-run")
    with unit_of_work(live.factory) as session:
        run = session.get(FeedRun, run_id)
        assert run is not None and run.state == "applied"
        assert run.decision_note == "They left at the end of the quarter"

    # Campaigns: create a draft through the form (the deadline's error first), launch it.
    _nav(page, "Campaigns")
    page.get_by_label("Name").fill("Finance review")
    page.get_by_label("Kind (who reviews)").select_option("manager")
    page.get_by_label("Deadline (YYYY-MM-DD)").fill("2020-01-01")
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator("[data-field-error=deadline_at]")).to_have_text(
        "must be after starts_at")
    shoot(page, "campaign-deadline-error")
    page.get_by_label("Deadline (YYYY-MM-DD)").fill(
        (live.clock.now().date().replace(year=live.clock.now().year + 1)).isoformat())
    page.get_by_role("button", name="Create draft").click()
    page.get_by_role("button", name="Launch Finance review").click()
    expect(page.locator(".notice.success")).to_contain_text("launched")
    shoot(page, "campaigns")

    for link, name, heading in (
            ("Applications", "applications", "Applications and connector health"),
            ("Failed operations", "failed", "Failed operations"),
            ("Catalog changes", "catalog", "Catalog changes")):
        _nav(page, link)
        expect(page.locator("h1")).to_have_text(heading)
        shoot(page, name)


def test_an_auditor_downloads_an_entitlement_report_with_its_manifest(
        live: LiveServer, demo: DemoWorld, signed_in: Any, shoot: Any, tmp_path: Path) -> None:
    auditor = grant(live, demo, "auditor")
    page = signed_in(auditor)
    _nav(page, "Reports")
    shoot(page, "reports")
    # A point in time in the future is refused at its field.
    as_of = page.locator("#report-entitlements_as_of")
    as_of.locator("[data-param=as_of]").fill("2099-01-01T00:00")
    as_of.get_by_role("button").click()
    expect(page.locator("[data-field-error='entitlements_as_of.as_of']")).to_contain_text(
        "must not be later than now")
    shoot(page, "point-in-time-error")

    page.locator("#report-entitlements").get_by_role("button").click()
    page.wait_for_url("**/ui/reports/exports/*")
    rows = int(page.locator("#export-rows").inner_text())
    shoot(page, "export")
    with page.expect_download() as got:
        page.locator("#download-file").click()
    data = Path(got.value.path()).read_bytes()
    with page.expect_download() as got_manifest:
        page.locator("#download-manifest").click()
    manifest = json.loads(Path(got_manifest.value.path()).read_text())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["rows"] == rows > 0
    lines = list(csv.reader(data.decode().splitlines()))
    assert len(lines) == rows + 1 and lines[0] == manifest["columns"]

    _nav(page, "Audit trail")
    page.get_by_label("Action").fill("hr_source.create")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#events tbody tr")).to_have_count(1)
    shoot(page, "audit-search")
    page.locator("#verify-link").click()
    expect(page.locator("#chain-status")).to_contain_text("The chain is intact")
    shoot(page, "audit-verify")


def _csrf(page: Any) -> str:
    token: str = page.locator("input[name=csrf_token]").first.input_value()
    return token


def test_pages_refuse_what_the_persona_may_not_do(
        live: LiveServer, demo: DemoWorld, signed_in: Any, shoot: Any) -> None:
    campaign = manager_campaign(live)
    manager = demo.personas["manager"]
    item = sorted(_items(live, manager))[0]
    auditor = signed_in(grant(live, demo, "auditor"))
    auditor.goto(f"/ui/certification/campaigns/{campaign}")
    assert auditor.locator("form[action$='/decision']").count() == 0  # no decision forms
    shoot(auditor, "auditor-campaign")
    answer = auditor.request.post(f"/ui/certification/items/{item}/decision", form={
        "csrf_token": _csrf(auditor), "decision": "certify", "comment": "", "back": ""})
    assert answer.status == 403
    assert _items(live, manager)[item][1] == "pending"

    requester = signed_in(demo.personas["requester"])
    for path in ("/ui/admin/failed", "/ui/admin/applications", "/ui/admin/hr",
                 "/ui/admin/catalog", "/ui/certification/manage", "/ui/reports", "/ui/audit"):
        requester.goto(path)
        assert requester.locator("p.problem").get_attribute("data-status") == "403", path
    shoot(requester, "requester-refused")
    answer = requester.request.post(f"/ui/certification/items/{item}/decision", form={
        "csrf_token": _csrf(requester), "decision": "certify"})
    assert answer.status == 404  # not their item: it does not exist for them, as in the API

    member = signed_in(demo.personas["resolution"])
    _nav(member, "Resolution")
    expect(member.locator("h1")).to_have_text("Resolution group work")
    shoot(member, "resolution")
