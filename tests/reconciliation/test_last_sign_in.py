"""Aggregation keeps the last sign-in a target tells of on the account (ISO 8601, UTC), where
certification reads it, and audits it only when it changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from certification.context import LAST_SIGN_IN_KEY as READ_BY_CERTIFICATION
from idgov.db.session import unit_of_work
from idgov.models.application import Account
from idgov.models.audit import AuditEvent
from idgov.reconciliation.account_attributes import LAST_SIGN_IN_KEY
from tests.reconciliation.helpers import Lab


def _sign_ins(lab: Lab) -> dict[str, str | None]:
    with unit_of_work(lab.factory) as session:
        return {a.username or a.native_id: (a.attributes or {}).get(LAST_SIGN_IN_KEY)
                for a in session.scalars(select(Account))}


def _updates(lab: Lab) -> int:
    with unit_of_work(lab.factory) as session:
        return len(list(session.scalars(select(AuditEvent.id).where(
            AuditEvent.action == "account.update"))))


def test_aggregation_stores_the_last_sign_in_in_utc_and_audits_only_changes(lab: Lab) -> None:
    lab.person("E1")
    lab.person("E2")
    paris = timezone(timedelta(hours=2))
    ref = lab.target.add_account("ann", {"employeeNumber": "E1"},
                                 last_sign_in=datetime(2026, 1, 10, 10, 0, tzinfo=paris))
    lab.target.add_account("bob", {"employeeNumber": "E2"})

    first = lab.aggregate()

    assert _sign_ins(lab) == {"ann": "2026-01-10T08:00:00+00:00", "bob": None}
    assert first.counts["last_sign_ins_changed"] == 0  # new accounts: account.create
    again = lab.aggregate()
    assert (again.counts["accounts_updated"], again.counts["last_sign_ins_changed"]) == (0, 0)
    assert _updates(lab) == 0

    lab.target.set_last_sign_in(ref.native_id, datetime(2026, 1, 14, 7, 30, tzinfo=UTC))
    later = lab.aggregate()

    assert _sign_ins(lab) == {"ann": "2026-01-14T07:30:00+00:00", "bob": None}
    assert (later.counts["accounts_updated"], later.counts["last_sign_ins_changed"]) == (1, 1)
    assert _updates(lab) == 1
    assert lab.aggregate().counts["accounts_updated"] == 0


def test_the_key_is_the_one_certification_reads() -> None:
    assert LAST_SIGN_IN_KEY == READ_BY_CERTIFICATION == "last_sign_in"
