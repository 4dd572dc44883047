"""A first HR snapshot's joiners written in bulk: the operations they get, and their audit
trail: one ``provisioning.record`` event per joiner (object: the identity) listing its
operations as the per-operation events of the one-by-one path show them; the chain verifies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.applications.crypto import CredentialCipher
from idgov.applications.schemas import ApplicationCreate
from idgov.applications.service import create_application
from idgov.audit.signing import Signer, Verifier
from idgov.audit.verify import verify_chain
from idgov.birthright.rules import create_rule
from idgov.birthright.schemas import BirthrightRuleCreate
from idgov.catalog.composition import add_entitlement
from idgov.catalog.schemas import EntitlementCreate, RoleCreate, RoleEntitlementCreate
from idgov.catalog.service import create_entitlement, create_role
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.lifecycle import feed
from idgov.lifecycle.csvfeed import parse_csv
from idgov.lifecycle.source_schemas import HrSourceCreate
from idgov.lifecycle.sources import create_source
from idgov.models.audit import AuditEvent
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.types import Actor

ADMIN = Actor.system("setup")
HR = Actor.system("hr-feed")
CSV = ("id,first,last,dept,start\r\n"
       "E1,Ada,Quinn,Ops,2026-01-05\r\n"
       "E2,Zoë,O'Brien,Ops,2026-09-01\r\n"  # hired later: prehire, operations wait
       "E3,Bo,Ng,Nowhere,2026-01-05\r\n")  # no rule matches: no operations, no event
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _world(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with unit_of_work(factory) as session:
        # The API offers no "memory" kind (for trials and tests): built unvalidated.
        app = create_application(session, application_in=ApplicationCreate.model_construct(
            name="Directory", description=None,
            connector_kind="memory",  # type: ignore[arg-type]
            settings={"target": "bulk-test"}, credentials=None, owner_id=None,
            resolution_group_id=None, risk="medium"),
            cipher=CredentialCipher([Fernet.generate_key()]), actor=ADMIN, clock=clock)
        role = create_role(session, role_in=RoleCreate(name="Ops base"), actor=ADMIN,
                           clock=clock)
        for name in ("staff", "ops-share"):
            entitlement = create_entitlement(session, entitlement_in=EntitlementCreate(
                application_id=app.id, native_id=f"cn={name}", name=name), actor=ADMIN,
                clock=clock)
            add_entitlement(session, role_id=role.id, link_in=RoleEntitlementCreate(
                entitlement_id=entitlement.id), actor=ADMIN, clock=clock)
        create_rule(session, rule_in=BirthrightRuleCreate(
            name="Ops", condition={"attribute": "department", "op": "eq", "value": "Ops"},
            role_id=role.id), actor=ADMIN, clock=clock)
        create_source(session, source_in=HrSourceCreate(
            name="HR", kind="csv", column_mapping={
                "employee_id": "id", "given_name": "first", "family_name": "last",
                "department": "dept", "hire_date": "start"}), actor=ADMIN, clock=clock)


def _load(factory: sessionmaker[Session], clock: FixedClock) -> None:
    from idgov.lifecycle.sources import get_source_by_name

    with unit_of_work(factory) as session:
        source = get_source_by_name(session, "HR")
        parsed = parse_csv(CSV.encode(), mapping=dict(source.column_mapping))
        run = feed.run_feed(session, source=source, parsed=parsed, mode="snapshot",
                            channel="file", actor=HR, clock=clock)
        assert run.state == "applied" and run.counts["joiners"] == 3


def test_each_joiner_gets_one_provisioning_event_listing_its_operations(
        session_factory: sessionmaker[Session], signer: Signer) -> None:
    clock = FixedClock(NOW)
    _world(session_factory, clock)
    _load(session_factory, clock)

    with session_factory() as session:
        people = {i.employee_id: i.id for i in session.scalars(select(Identity))}
        ops = list(session.scalars(select(ProvisioningOperation)
                                   .order_by(ProvisioningOperation.ordinal)))
        events = list(session.scalars(select(AuditEvent)
                                      .where(AuditEvent.action == "provisioning.record")
                                      .order_by(AuditEvent.seq)))
        assert [(e.object_type, e.object_id, e.actor_name) for e in events] == [
            ("identity", str(people["E1"]), "hr-feed"),
            ("identity", str(people["E2"]), "hr-feed")]
        for event in events:
            assert event.before is None and event.context is None
            assert event.after is not None
            listed = event.after["operations"]
            mine = [op for op in ops if str(op.identity_id) == event.object_id]
            assert [o["id"] for o in listed] == [str(op.id) for op in mine]
            assert [(o["action"], o["state"], o["detail"].get("username")) for o in listed] == [
                ("create_account", "pending", "aquinn" if event.object_id == str(
                    people["E1"]) else "zobrien"),
                ("deliver_access", "pending", None), ("grant", "pending", None),
                ("grant", "pending", None)]
            assert all(o["identity_id"] == event.object_id for o in listed)
            # each entry is what the one-by-one path's per-operation event carries
            assert listed == [_as_audited(op) for op in mine]
        # E2 starts on 1 September 2026 (UTC): deliver_access and grants wait for it
        later = events[1].after["operations"]  # type: ignore[index]
        assert [o["next_attempt_at"] for o in later] == [
            None, "2026-09-01T00:00:00+00:00", "2026-09-01T00:00:00+00:00",
            "2026-09-01T00:00:00+00:00"]
        # no operation is audited on its own any more on this path
        assert session.scalars(select(AuditEvent.id).where(
            AuditEvent.object_type == "provisioning_operation")).all() == []
        verifier = Verifier(keys={signer.key_id: signer.public_key})
        result = verify_chain(session, verifier, now=NOW)
        assert result.ok and result.events > 0


def _as_audited(op: ProvisioningOperation) -> dict[str, Any]:
    from idgov.audit.service import snapshot

    return snapshot(op, exclude=frozenset({"claimed_by", "lease_until", "started_at",
                                           "last_error", "error_category",
                                           "resolution_group_id", "resolved_by",
                                           "resolution_note", "compensates_id",
                                           "completed_at"}))
