"""Accounts from identities: names, mappings per kind, collisions, ordering, attribute push."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import AccountRef
from idgov.assignments import service as assignments
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.identities import service as identities
from idgov.identities.schemas import IdentityUpdate
from idgov.models.application import Account, Application
from idgov.models.audit import AuditEvent
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import accounts
from idgov.provisioning.service import complete_operation
from idgov.types import Actor

ACTOR = Actor.system("tests")


# --- the formatter and folding (no database) -------------------------------------------------

NAMES = [
    # given, family -> login name with the default template {given_name:.1}{family_name}
    ("John", "Smith", "jsmith"),
    ("Zoë", "O'Brien", "zobrien"),
    ("Émile", "Zola-Durand", "ezola-durand"),
    ("Åsa", "Ødegård", "aodegard"),
    ("Jürgen", "Groß", "jgross"),
    ("Anne Marie", "de la Cruz", "adelacruz"),
    ("Łukasz", "Żółć", "lzolc"),
    ("Ægir", "Þórsson", "aethorsson"),
]


def _values(given: str, family: str, **extra: str) -> dict[str, str]:
    values = {name: "" for name in accounts.IDENTITY_FIELDS}
    return values | {"given_name": given, "family_name": family,
                     "display_name": f"{given} {family}", **extra}


def _app(kind: str = "ldap", **settings: Any) -> Application:
    return Application(id=uuid.uuid4(), name=f"{kind} app", connector_kind=kind,
                       settings=settings)


@pytest.mark.parametrize(("given", "family", "expected"), NAMES)
def test_login_names_are_lower_case_ascii_without_accents_or_apostrophes(
        given: str, family: str, expected: str) -> None:
    assert accounts.base_username(_app(), _values(given, family)) == expected


TEMPLATES = [
    ("{given_name}.{family_name}", "zoe.obrien"),
    ("{family_name[0:3]}{given_name[0]}", "obz"),  # "O'B" + "Z", then folded
    ("{family_name:.4}_{employee_id}", "obr_e042"),  # truncation to 4 characters, then folding
    ("{given_name[-1]}{family_name[1:]}", "ebrien"),
]


@pytest.mark.parametrize(("template", "expected"), TEMPLATES)
def test_templates_slice_and_truncate_identity_fields(template: str, expected: str) -> None:
    app = _app(account_mapping={"username": template})
    values = _values("Zoë", "O'Brien", employee_id="E042")
    assert accounts.base_username(app, values) == expected


REFUSED = [
    "{given_name.__class__}",
    "{given_name!r}",
    "{0}",
    "{}",
    "{password}",
    "{given_name:{family_name}}",
    "{settings.secret.x}",
    "{given_name:>100000}",
    "{given_name",
]


@pytest.mark.parametrize("template", REFUSED)
def test_templates_name_identity_fields_and_nothing_else(template: str) -> None:
    with pytest.raises(accounts.TemplateError):
        accounts.render(template, _values("Zoë", "O'Brien"))
    errors = accounts.validate_mapping(_app(account_mapping={"attributes": {"cn": template}}))
    assert [e.field for e in errors] == ["settings.account_mapping.attributes.cn"]


def test_an_empty_folded_name_falls_back_to_the_employee_id() -> None:
    assert accounts.base_username(_app(), _values("李", "王", employee_id="E-77")) == "ue-77"


def test_an_attribute_set_to_null_in_the_settings_removes_a_default_one() -> None:
    app = _app(account_mapping={"attributes": {"departmentNumber": None, "title": "{job_title}"}})
    attributes = accounts.render_attributes(app, _values("Zoë", "O'Brien", job_title="Chef"),
                                            "zobrien")
    assert "departmentNumber" not in attributes
    assert attributes["title"] == "Chef"


# --- with a database -------------------------------------------------------------------------


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with unit_of_work(session_factory) as s:
        yield s


def _person(session: Session, employee_id: str, given: str, family: str,
            **extra: Any) -> Identity:
    person = Identity(employee_id=employee_id, given_name=given, family_name=family,
                      display_name=f"{given} {family}",
                      email=f"{employee_id.lower()}@example.com", **extra)
    session.add(person)
    session.flush()
    return person


def _application(session: Session, kind: str, name: str | None = None,
                 **settings: Any) -> Application:
    app = Application(name=name or f"{kind} target", connector_kind=kind, settings=settings)
    session.add(app)
    session.flush()
    return app


def _entitlement(session: Session, app: Application, name: str) -> Entitlement:
    ent = Entitlement(application_id=app.id, native_id=f"cn={name}", name=name)
    session.add(ent)
    session.flush()
    return ent


def _ops(session: Session, identity: Identity, app: Application) -> list[ProvisioningOperation]:
    return list(session.scalars(select(ProvisioningOperation).where(
        ProvisioningOperation.identity_id == identity.id,
        ProvisioningOperation.application_id == app.id)
        .order_by(ProvisioningOperation.ordinal)))


def _create(session: Session, identity: Identity, app: Application, clock: FixedClock,
            cause_id: str = "test") -> ProvisioningOperation:
    op = accounts.ensure_account_operations(session, identity_id=identity.id,
                                            application_id=app.id, cause="assignment",
                                            cause_id=cause_id, actor=ACTOR, clock=clock)
    assert op is not None
    return op


def _land(session: Session, op: ProvisioningOperation, clock: FixedClock) -> Account:
    """What the engine does when the target created the account."""
    name = op.detail["username"]
    account = accounts.record_account_created(
        session, operation=op, ref=AccountRef(native_id=f"uid={name},ou=people", username=name),
        actor=ACTOR, clock=clock)
    complete_operation(session, operation_id=op.id, succeeded=True, error=None, actor=ACTOR,
                       clock=clock)
    return account


SPECS = [
    ("ldap", {}, {"uid": "zobrien", "cn": "Zoë O'Brien", "sn": "O'Brien", "givenName": "Zoë",
                  "mail": "e1@example.com", "departmentNumber": "Finance",
                  "employeeNumber": "E1"}),
    ("memory", {}, {"uid": "zobrien", "cn": "Zoë O'Brien", "sn": "O'Brien", "givenName": "Zoë",
                    "mail": "e1@example.com", "departmentNumber": "Finance",
                    "employeeNumber": "E1"}),
    # Entra: the connector makes the userPrincipalName from the username and upn_domain.
    ("entra", {"upn_domain": "contoso.example"},
     {"displayName": "Zoë O'Brien", "mailNickname": "zobrien", "department": "Finance",
      "employeeId": "E1"}),
    # Keycloak: names other than its own user fields become user attributes.
    ("keycloak", {}, {"email": "e1@example.com", "firstName": "Zoë", "lastName": "O'Brien",
                      "department": "Finance", "employeeNumber": "E1"}),
]


@pytest.mark.parametrize(("kind", "settings", "expected"), SPECS)
def test_each_kind_maps_an_identity_to_its_own_vocabulary(
        session: Session, kind: str, settings: dict[str, Any],
        expected: dict[str, Any]) -> None:
    zoe = _person(session, "E1", "Zoë", "O'Brien", department="Finance")
    app = _application(session, kind, **settings)
    spec = accounts.account_spec(session, identity=zoe, application=app)
    assert spec.username == "zobrien"
    assert dict(spec.attributes) == expected


def test_empty_fields_are_left_out_of_the_account(session: Session) -> None:
    person = _person(session, "E2", "Ann", "Lee")
    person.email = None
    app = _application(session, "ldap")
    spec = accounts.account_spec(session, identity=person, application=app)
    assert set(spec.attributes) == {"uid", "cn", "sn", "givenName", "employeeNumber"}


def test_a_second_john_smith_gets_a_distinct_name_that_stays_his(
        session: Session, clock: FixedClock) -> None:
    app = _application(session, "ldap")
    other = _application(session, "ldap", "Other directory")
    john = _person(session, "E1", "John", "Smith")
    jane = _person(session, "E2", "Jane", "Smith")
    jo = _person(session, "E3", "Jo", "Smithers")
    # An orphan account found in the target holds "jsmith" already.
    session.add(Account(application_id=app.id, native_id="uid=jsmith", username="jsmith"))
    session.flush()

    first = _create(session, john, app, clock)
    second = _create(session, jane, app, clock)
    assert (first.detail["username"], second.detail["username"]) == ("jsmith2", "jsmith3")
    assert _create(session, jo, app, clock).detail["username"] == "jsmithers"
    # In another application the names are free.
    assert _create(session, jane, other, clock).detail["username"] == "jsmith"

    # Asked again, each keeps the name chosen for them, before and after creation, even
    # when the name would now come out differently.
    assert accounts.account_spec(session, identity=jane, application=app).username == "jsmith3"
    _land(session, first, clock)
    _land(session, second, clock)
    jane.given_name = "Janet"
    jane.family_name = "Smith-Jones"
    session.flush()
    assert accounts.account_spec(session, identity=john, application=app).username == "jsmith2"
    assert accounts.account_spec(session, identity=jane, application=app).username == "jsmith3"
    # A third Smith waits behind both.
    jim = _person(session, "E4", "Jim", "Smith")
    assert _create(session, jim, app, clock).detail["username"] == "jsmith4"


def test_a_failed_creation_gives_its_name_back(session: Session, clock: FixedClock) -> None:
    app = _application(session, "ldap")
    john = _person(session, "E1", "John", "Smith")
    jack = _person(session, "E2", "Jack", "Smith")
    op = _create(session, john, app, clock)
    complete_operation(session, operation_id=op.id, succeeded=False, error="refused",
                       actor=ACTOR, clock=clock)
    assert _create(session, jack, app, clock).detail["username"] == "jsmith"
    assert _create(session, john, app, clock, cause_id="again").detail["username"] == "jsmith2"


def test_a_grant_where_the_identity_has_no_account_is_preceded_by_its_creation(
        session: Session, clock: FixedClock) -> None:
    app = _application(session, "ldap")
    vpn = _entitlement(session, app, "VPN")
    wiki = _entitlement(session, app, "Wiki")
    zoe = _person(session, "E1", "Zoë", "O'Brien")

    first = assignments.grant(session, identity_id=zoe.id, entitlement_id=vpn.id,
                              source="admin", reason="test", valid_from=None,
                              valid_until=None, actor=ACTOR, clock=clock)
    ops = _ops(session, zoe, app)
    assert [(o.action, o.entitlement_id) for o in ops] == [("create_account", None),
                                                           ("grant", vpn.id)]
    create = ops[0]
    assert create.detail == {"username": "zobrien"}
    assert (create.cause, create.cause_id, create.assignment_id) == (
        "assignment", str(first.id), first.id)
    assert create.idempotency_key == f"assignment:{first.id}:{zoe.id}:app:{app.id}:create_account"
    actions = session.scalars(select(AuditEvent.action)
                              .where(AuditEvent.object_id == str(create.id))).all()
    assert list(actions) == ["provisioning.record"]

    # A second grant while the creation is pending: no second creation.
    assignments.grant(session, identity_id=zoe.id, entitlement_id=wiki.id, source="admin",
                      reason="test", valid_from=None, valid_until=None, actor=ACTOR,
                      clock=clock)
    assert [o.action for o in _ops(session, zoe, app)] == ["create_account", "grant", "grant"]

    # Once the account exists: none either; and losing the last entitlement only revokes.
    _land(session, create, clock)
    for assignment_id in session.scalars(select(ProvisioningOperation.assignment_id).where(
            ProvisioningOperation.action == "grant").distinct()):
        assert assignment_id is not None
        assignments.revoke(session, assignment_id=assignment_id, reason="done", actor=ACTOR,
                           clock=clock)
    assert [o.action for o in _ops(session, zoe, app)] == [
        "create_account", "grant", "grant", "revoke", "revoke"]
    assert accounts.account_ref(session, operation=_ops(session, zoe, app)[-1]) == AccountRef(
        native_id="uid=zobrien,ou=people", username="zobrien")


def test_manual_applications_get_no_separate_account_creation(
        session: Session, clock: FixedClock) -> None:
    app = _application(session, "manual")
    ent = _entitlement(session, app, "Ledger")
    zoe = _person(session, "E1", "Zoë", "O'Brien")
    assignments.grant(session, identity_id=zoe.id, entitlement_id=ent.id, source="admin",
                      reason="test", valid_from=None, valid_until=None, actor=ACTOR,
                      clock=clock)
    assert [o.action for o in _ops(session, zoe, app)] == ["grant"]


def test_a_deleted_account_is_created_again_under_the_same_row(
        session: Session, clock: FixedClock) -> None:
    app = _application(session, "ldap")
    zoe = _person(session, "E1", "Zoë", "O'Brien")
    account = _land(session, _create(session, zoe, app, clock), clock)
    account.status = "deleted"
    session.flush()
    again = _create(session, zoe, app, clock, cause_id="rehire")
    assert again.detail["username"] == "zobrien"
    assert _land(session, again, clock).id == account.id
    assert account.status == "active"
    assert again.account_id == account.id


def test_a_mapped_attribute_change_is_pushed_to_the_accounts(
        session: Session, clock: FixedClock) -> None:
    ldap = _application(session, "ldap")
    keycloak = _application(session, "keycloak")
    zoe = _person(session, "E1", "Zoë", "O'Brien", department="Finance")
    ldap_account = _land(session, _create(session, zoe, ldap, clock), clock)
    kc_account = _land(session, _create(session, zoe, keycloak, clock), clock)

    # Not mapped: nothing to push.
    identities.update_identity(session, identity_id=zoe.id,
                               identity_in=IdentityUpdate(job_title="Controller"),
                               actor=ACTOR, clock=clock)
    assert session.scalars(select(ProvisioningOperation).where(
        ProvisioningOperation.action == "update_account")).all() == []

    identities.update_identity(
        session, identity_id=zoe.id,
        identity_in=IdentityUpdate(family_name="Byrne", display_name="Zoë Byrne",
                                   department="Treasury"),
        actor=ACTOR, clock=clock)
    updates = {o.account_id: o for o in session.scalars(select(ProvisioningOperation).where(
        ProvisioningOperation.action == "update_account"))}
    assert set(updates) == {ldap_account.id, kc_account.id}
    ldap_op = updates[ldap_account.id]
    assert (ldap_op.cause, ldap_op.state, ldap_op.entitlement_id) == (
        "identity_change", "pending", None)
    # The login name stays: uid is unchanged and not sent as a change.
    assert ldap_op.detail == {
        "attributes": {"uid": "zobrien", "cn": "Zoë Byrne", "sn": "Byrne", "givenName": "Zoë",
                       "mail": "e1@example.com", "departmentNumber": "Treasury",
                       "employeeNumber": "E1"},
        "changed": ["cn", "departmentNumber", "sn"]}
    assert updates[kc_account.id].detail == {
        "attributes": {"email": "e1@example.com", "firstName": "Zoë", "lastName": "Byrne",
                       "department": "Treasury", "employeeNumber": "E1"},
        "changed": ["department", "lastName"]}
    assert ldap_op.ordinal > _ops(session, zoe, ldap)[0].ordinal
    actions = session.scalars(select(AuditEvent.action)
                              .where(AuditEvent.object_id == str(ldap_op.id))).all()
    assert list(actions) == ["provisioning.record"]

    # A cleared department is sent as null (to clear it in the target).
    identities.update_identity(session, identity_id=zoe.id,
                               identity_in=IdentityUpdate(department=None), actor=ACTOR,
                               clock=clock)
    cleared = [o for o in session.scalars(select(ProvisioningOperation).where(
        ProvisioningOperation.action == "update_account",
        ProvisioningOperation.account_id == ldap_account.id)) if o.id != ldap_op.id]
    assert len(cleared) == 1
    assert cleared[0].detail["attributes"]["departmentNumber"] is None
    assert cleared[0].detail["changed"] == ["departmentNumber"]


def test_a_deleted_account_gets_no_update(session: Session, clock: FixedClock) -> None:
    ldap = _application(session, "ldap")
    zoe = _person(session, "E1", "Zoë", "O'Brien")
    account = _land(session, _create(session, zoe, ldap, clock), clock)
    account.status = "deleted"
    session.flush()
    identities.update_identity(session, identity_id=zoe.id,
                               identity_in=IdentityUpdate(family_name="Byrne"), actor=ACTOR,
                               clock=clock)
    assert session.scalars(select(ProvisioningOperation).where(
        ProvisioningOperation.action == "update_account")).all() == []


def test_a_mapping_that_is_not_one_is_reported() -> None:
    errors = accounts.mapping_errors("ldap", {"account_mapping": {"attributes": ["cn"]}})
    assert [e.field for e in errors] == ["settings.account_mapping"]
    assert accounts.mapping_errors("entra", {"domain": "contoso.example"}) == []
