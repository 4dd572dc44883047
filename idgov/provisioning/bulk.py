"""Recording the operations of many new identities at once (an HR snapshot's joiners).

:class:`JoinerRecorder` does for identities that hold nothing yet what
:func:`idgov.provisioning.service.record_assignment_change` does for one assignment: one
``create_account`` per application where an account is managed (login name chosen against
every name taken there), one ``deliver_access`` after it (day-one access, due at the hire
start), one ``grant`` per entitlement the new assignments reach, with the same idempotency
keys and ordering; written through the driver (:class:`idgov.db.rawwrite.RowWriter`) and
audited with :func:`idgov.audit.service.record_many`: one ``provisioning.record`` event per
joiner (object: the identity) listing its operations, where the per-assignment path writes
one per operation (object: the operation) with the same content. Identities that already
hold access go through the per-assignment path instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.audit.canonical import to_jsonable
from idgov.audit.service import EventSpec, record_many
from idgov.clock import Clock
from idgov.db.rawwrite import Pipeline, RowWriter, new_id_text
from idgov.models.application import Application
from idgov.models.provisioning import ProvisioningOperation
from idgov.policy.snapshot import PolicySnapshot
from idgov.provisioning import accounts
from idgov.provisioning.ordering import next_ordinal
from idgov.provisioning.service import idempotency_key
from idgov.types import Actor


@dataclass(frozen=True)
class NewGrant:
    """One new assignment of a new identity: a role or an entitlement."""

    assignment_id: uuid.UUID
    role_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None


@dataclass(frozen=True)
class JoinerAccess:
    """A new identity, its new assignments, and when its access may start."""

    identity_id: uuid.UUID
    values: Mapping[str, Any]  # the identity's HR fields (an identity row)
    grants: Sequence[NewGrant]
    not_before: datetime | None
    day_one_cause_id: str


class _Names:
    """Login names taken per application, loaded once per run and extended as chosen."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.taken: dict[uuid.UUID, set[str]] = {}
        self.next_suffix: dict[tuple[uuid.UUID, str], int] = {}

    def choose(self, application: Application, values: Mapping[str, Any]) -> str:
        taken = self.taken.get(application.id)
        if taken is None:
            taken = self.taken[application.id] = accounts.taken_names(
                self.session, application_id=application.id)
        base = accounts.base_username(application, {
            name: "" if values.get(name) is None else str(values[name])
            for name in accounts.IDENTITY_FIELDS})
        max_length = accounts.mapping_of(application).max_length
        # Common names share a base: start from the suffix after the last one handed out.
        n = self.next_suffix.get((application.id, base), 1)
        while True:
            suffix = "" if n == 1 else str(n)
            candidate = base[:max_length - len(suffix)] + suffix
            if candidate not in taken:
                taken.add(candidate)
                self.next_suffix[(application.id, base)] = n + 1
                return candidate
            n += 1


def _entitlements(snapshot: PolicySnapshot, grant: NewGrant) -> Iterable[uuid.UUID]:
    if grant.entitlement_id is not None:
        return (grant.entitlement_id,)
    assert grant.role_id is not None
    if grant.role_id not in snapshot.roles:
        return ()
    return snapshot.ordered_entitlements(grant.role_id)


def _op(*, key: str, identity_id: str, application_id: str, action: str, cause: str,
        cause_id: str, entitlement_id: str | None, assignment_id: str | None,
        detail: dict[str, Any], due: datetime | None) -> dict[str, Any]:
    """An operation row (ids as text) without its timestamps: as its audit entry shows it."""
    return {"id": new_id_text(), "idempotency_key": key, "identity_id": identity_id,
            "application_id": application_id, "entitlement_id": entitlement_id,
            "account_id": None, "action": action, "ordinal": next_ordinal(),
            "state": "pending", "cause": cause, "cause_id": cause_id,
            "assignment_id": assignment_id, "request_line_id": None, "attempts": 0,
            "next_attempt_at": due, "detail": detail}


def _audited(row: dict[str, Any]) -> dict[str, Any]:
    """An operation row as its audit entry shows it: plain JSON data (the detail already
    is; ids are text; a timestamp becomes UTC ISO 8601 text, as to_jsonable gives it)."""
    due = row["next_attempt_at"]
    return row if due is None else {**row, "next_attempt_at": to_jsonable(due)}


_OP_COLUMNS = ("id", "idempotency_key", "identity_id", "application_id", "entitlement_id",
               "account_id", "action", "ordinal", "state", "cause", "cause_id",
               "assignment_id", "request_line_id", "attempts", "next_attempt_at", "detail")


class JoinerRecorder:
    """Records joiners' operations chunk by chunk; keeps the name cache between chunks."""

    def __init__(self, session: Session, *, snapshot: PolicySnapshot,
                 applications: Mapping[uuid.UUID, Application], actor: Actor,
                 clock: Clock) -> None:
        self.session = session
        self.snapshot = snapshot
        self.applications = applications
        self.actor = actor
        self.clock = clock
        self.names = _Names(session)
        self._managed: dict[uuid.UUID, bool] = {}
        self._writer: RowWriter | None = None
        # When set, rows are stored on its thread (see idgov.db.rawwrite.Pipeline).
        self.pipeline: Pipeline | None = None
        self._texts: dict[uuid.UUID, str] = {}  # applications' and entitlements' ids as text

    def _manages(self, application_id: uuid.UUID) -> bool:
        managed = self._managed.get(application_id)
        if managed is None:  # the applications are read once per run: so is their mapping
            application = self.applications.get(application_id)
            managed = self._managed[application_id] = (
                application is not None and accounts.mapping_of(application).manage_accounts)
        return managed

    def record(self, joiners: Iterable[JoinerAccess]) -> int:
        """Write the operations of ``joiners``; returns how many.

        Audited with one ``provisioning.record`` event per joiner (object: the identity),
        whose ``after`` lists the joiner's operations (each as the one-by-one path's
        per-operation event shows it: every column but the timestamps), in the order
        they were recorded."""
        now = self.clock.now()
        rows: list[dict[str, Any]] = []
        events: list[EventSpec] = []
        for joiner in joiners:
            planned = self._plan(joiner, now)
            if not planned:
                continue
            rows.extend(planned)
            events.append(EventSpec(
                action="provisioning.record", object_type="identity",
                object_id=joiner.identity_id, plain=True,
                after={"operations": [_audited(row) for row in planned]}))
        if not rows:
            return 0
        if self._writer is None:
            self._writer = RowWriter(self.session, ProvisioningOperation,
                                     (*_OP_COLUMNS, "created_at", "updated_at"))
        pick = itemgetter(*_OP_COLUMNS)
        self._writer.write(((*pick(row), now, now) for row in rows), pipeline=self.pipeline)
        record_many(self.session, events, actor=self.actor, clock=self.clock,
                    pipeline=self.pipeline)
        return len(rows)

    def _text(self, value: uuid.UUID) -> str:
        text = self._texts.get(value)
        if text is None:
            text = self._texts[value] = str(value)
        return text

    def _plan(self, joiner: JoinerAccess, now: datetime) -> list[dict[str, Any]]:
        identity_id = joiner.identity_id
        due = joiner.not_before if joiner.not_before and joiner.not_before > now else None
        detail: dict[str, Any] = {"not_before": due.isoformat()} if due else {}
        grants: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []  # (entitlement, app, asg)
        seen: set[uuid.UUID] = set()
        for grant in joiner.grants:
            for entitlement_id in _entitlements(self.snapshot, grant):
                node = self.snapshot.entitlements.get(entitlement_id)
                if entitlement_id in seen or node is None:
                    continue
                seen.add(entitlement_id)
                grants.append((entitlement_id, node.application_id, grant.assignment_id))
        rows: list[dict[str, Any]] = []
        identity = str(identity_id)
        first_of_app: dict[uuid.UUID, uuid.UUID] = {}
        for _e, application_id, assignment_id in grants:
            first_of_app.setdefault(application_id, assignment_id)
        for application_id, assignment_id in first_of_app.items():
            if not self._manages(application_id):
                continue
            application = self.applications[application_id]
            username = self.names.choose(application, joiner.values)
            app, assignment = self._text(application_id), str(assignment_id)
            rows.append(_op(
                key=accounts.account_key(cause="assignment", cause_id=assignment,
                                         identity_id=identity_id,
                                         application_id=application_id,
                                         action="create_account"),
                identity_id=identity, application_id=app, action="create_account",
                cause="assignment", cause_id=assignment, entitlement_id=None,
                assignment_id=assignment, detail={"username": username}, due=None))
            rows.append(_op(
                key=accounts.account_key(cause="lifecycle", cause_id=joiner.day_one_cause_id,
                                         identity_id=identity_id,
                                         application_id=application_id,
                                         action="deliver_access"),
                identity_id=identity, application_id=app, action="deliver_access",
                cause="lifecycle", cause_id=joiner.day_one_cause_id, entitlement_id=None,
                assignment_id=None, detail=dict(detail), due=due))
        assignments: dict[uuid.UUID, str] = {}
        for entitlement_id, application_id, assignment_id in grants:
            if assignment_id not in assignments:
                assignments[assignment_id] = str(assignment_id)
            assignment = assignments[assignment_id]
            rows.append(_op(
                key=idempotency_key(cause="assignment", cause_id=assignment,
                                    identity_id=identity_id, entitlement_id=entitlement_id,
                                    action="grant"),
                identity_id=identity, application_id=self._text(application_id),
                action="grant", cause="assignment", cause_id=assignment,
                entitlement_id=self._text(entitlement_id), assignment_id=assignment,
                detail=dict(detail), due=due))
        return rows


def load_applications(session: Session) -> dict[uuid.UUID, Application]:
    """Every application, by id (few; read once per run)."""
    return {a.id: a for a in session.scalars(select(Application))}
