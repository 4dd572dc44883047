"""Set-up for the operations pages' browser stories, through the services: people granted
the auditor and administrator roles, a launched manager campaign, a held HR feed run."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from certification import campaigns
from certification.models import ReviewItem
from certification.schemas_campaigns import CampaignCreate
from idgov.auth import service as auth_service
from idgov.auth.schemas import GrantCreate
from idgov.db.session import unit_of_work
from idgov.lifecycle import service as hr_service
from idgov.lifecycle.source_schemas import HrSourceCreate
from idgov.lifecycle.sources import create_source
from idgov.types import Actor
from tests.ui.conftest import DemoWorld, LiveServer

SETUP = Actor.system("ui-tests")


def grant(live: LiveServer, demo: DemoWorld, role: str) -> uuid.UUID:
    """A person of the demo (no reports, no persona yet) granted ``role``."""
    taken = set(demo.personas.values())
    managers = {m for m in demo.manager_of.values() if m is not None}
    person = sorted(i for i in demo.by_name.values() if i not in taken | managers)[
        0 if role == "auditor" else 1]
    with unit_of_work(live.factory) as session:
        auth_service.grant_role(session, grant_in=GrantCreate(identity_id=person, role=role),
                                actor=SETUP, clock=live.clock)
    return person


def manager_campaign(live: LiveServer, name: str = "Quarterly access review") -> uuid.UUID:
    """A launched manager campaign over the whole demo organisation."""
    with unit_of_work(live.factory) as session:
        made = campaigns.create_campaign(session, campaign_in=CampaignCreate(
            name=name, kind="manager", fallbacks=["manager_of_manager"],
            deadline_at=live.clock.now() + timedelta(days=14)), actor=SETUP, clock=live.clock)
        campaigns.launch(session, campaign_id=made.id, actor=SETUP, clock=live.clock)
        return made.id


def reviewer_with_privileged_item(live: LiveServer, campaign_id: uuid.UUID) -> uuid.UUID:
    """The reviewer with the fewest items among those who review privileged access."""
    with unit_of_work(live.factory) as session:
        privileged = select(ReviewItem.reviewer_id).where(
            ReviewItem.campaign_id == campaign_id, ReviewItem.privileged.is_(True),
            ReviewItem.sod_conflict.is_(False))
        row = session.execute(
            select(ReviewItem.reviewer_id, func.count())
            .where(ReviewItem.campaign_id == campaign_id,
                   ReviewItem.reviewer_id.in_(privileged))
            .group_by(ReviewItem.reviewer_id)
            .order_by(func.count(), ReviewItem.reviewer_id)).first()
        assert row is not None and row[0] is not None
        return row[0]


FIELDS = ("employee_id", "given_name", "family_name", "email", "department",
          "employment_type", "hire_date")


def held_feed_run(live: LiveServer) -> tuple[uuid.UUID, int]:
    """An HR source loaded with 20 workers by a first snapshot, then a snapshot without 5 of
    them: 25% would leave, more than the source's 5%, so the run is held (as in
    tests/e2e/test_hr_feed_safety.py). Returns the held run's id and how many would leave."""
    workers = [{"employee_id": f"P-{n:03}", "given_name": f"Worker{n}",
                "family_name": "Payroll", "email": f"worker{n}.payroll@example.com",
                "department": "Finance", "employment_type": "employee",
                "hire_date": "2025-06-01"} for n in range(1, 21)]

    def csv_of(rows: list[dict[str, str]]) -> io.BytesIO:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        return io.BytesIO(out.getvalue().encode())

    with unit_of_work(live.factory) as session:
        source = create_source(session, source_in=HrSourceCreate(
            name="Payroll system", column_mapping={f: f for f in FIELDS}),
            actor=SETUP, clock=live.clock)
        runs = [hr_service.import_csv(session, source_id=source.id, stream=csv_of(rows),
                                      mode="snapshot", channel="upload", file_name=name,
                                      actor=Actor.system("hr-system"), clock=live.clock)
                for name, rows in (("everyone.csv", workers), ("truncated.csv", workers[:15]))]
        assert [r.state for r in runs] == ["applied", "held"], [r.hold_reason for r in runs]
        return runs[1].id, 5
