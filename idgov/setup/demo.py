"""Load the demo organisation through the service layer, every change audited.

Idempotent: each object is looked up by its natural key (employee id, name) and created only
when missing, together with what hangs off it (memberships, role links, assignments). A
second run finds everything and writes nothing, not even an audit event.
"""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from idgov.applications.crypto import CredentialCipher
from idgov.assignments import service as assignments
from idgov.audit.service import record, snapshot
from idgov.auth import repository as auth_repository
from idgov.auth import service as auth_service
from idgov.auth.schemas import GrantCreate
from idgov.clock import Clock
from idgov.identities import service as identities
from idgov.identities.schemas import IdentityCreate, IdentityUpdate
from idgov.models import (
    Application,
    Entitlement,
    Group,
    GroupMember,
    Identity,
    RequestType,
    Role,
    RoleEntitlement,
    RoleInclusion,
    SodRule,
    SodRuleItem,
)
from idgov.request_types import service as request_types
from idgov.request_types.schemas import RequestTypeCreate, StageIn
from idgov.setup.demo_data import (
    APPLICATIONS,
    ENTITLEMENTS,
    GROUPS,
    LDAP_BASE,
    LOCATIONS,
    REQUEST_TYPES,
    ROLES,
    SOD_RULES,
    EntSpec,
)
from idgov.setup.demo_hr import load_hr
from idgov.setup.demo_people import GrantPlan, PersonPlan, plan_organisation
from idgov.types import Actor

DEMO_ACTOR = Actor.system("demo")


def _native_id(spec: EntSpec) -> str:
    if spec.app == "ldap":
        return f"cn={spec.name},ou=groups,{LDAP_BASE}"
    if spec.app == "entra":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://idgov.dev/demo/entra/{spec.name}"))
    return spec.name.lower()


class _Loader:
    def __init__(self, session: Session, actor: Actor, clock: Clock,
                 cipher: CredentialCipher | None = None) -> None:
        self.session = session
        self.cipher = cipher
        self.actor = actor
        self.clock = clock
        self.now = clock.now()
        self.org = plan_organisation()
        self.created: Counter[str] = Counter()
        self.people: dict[str, uuid.UUID] = {}
        self.new_people: list[PersonPlan] = []
        self.roles: dict[str, uuid.UUID] = {}
        self.entitlements: dict[str, uuid.UUID] = {}
        # The session's identity map holds objects weakly; holding them here lets the
        # services find them there instead of asking the database again.
        self.loaded: list[Any] = []

    def _pairs(self, stmt: Select[str, uuid.UUID]) -> dict[str, uuid.UUID]:
        return {key: value for key, value in self.session.execute(stmt)}

    def _audit_create(self, obj: Any, object_type: str) -> None:
        self.session.flush()
        self.loaded.append(obj)
        record(self.session, actor=self.actor, action=f"{object_type}.create",
               object_type=object_type, object_id=obj.id, clock=self.clock,
               after=snapshot(obj))
        self.created[object_type] += 1

    def _stamp(self, obj: Any) -> None:
        obj.created_at = obj.updated_at = self.now

    def _day(self, offset: int) -> date:
        return (self.now + timedelta(days=offset)).date()

    def _leader(self, department: str) -> uuid.UUID:
        return self.people[self.org.leaders(department, "vp")[0].employee_id]

    def _director(self, department: str, n: int = 0) -> uuid.UUID:
        return self.people[self.org.leaders(department, "director")[n].employee_id]

    # identities -----------------------------------------------------------------------------

    def identities(self) -> None:
        self.people = self._pairs(select(Identity.employee_id, Identity.id))
        for plan in self.org.people:
            if plan.employee_id in self.people:
                continue
            location = LOCATIONS[plan.location]
            identity_in = IdentityCreate(
                employee_id=plan.employee_id, given_name=plan.given_name,
                family_name=plan.family_name, email=plan.email,
                manager_id=self.people[plan.manager] if plan.manager else None,
                department=plan.department, location=location.name,
                time_zone=location.time_zone, job_code=plan.job_code,
                job_title=plan.job_title, cost_center=plan.cost_center,
                employment_type=plan.employment_type,
                # The leaver is hired first and terminated once their access is revoked.
                lifecycle_state="prehire" if plan.lifecycle_state == "prehire" else "active",
                hire_date=self._day(plan.hire_days),
                attributes={"country": location.country, "level": plan.level},
            )
            identity = identities.create_identity(self.session, identity_in=identity_in,
                                                  actor=self.actor, clock=self.clock)
            self.people[plan.employee_id] = identity.id
            self.loaded.append(identity)
            self.new_people.append(plan)
            self.created["identity"] += 1

    # groups and applications ----------------------------------------------------------------

    def groups(self) -> dict[str, uuid.UUID]:
        existing = self._pairs(select(Group.name, Group.id))
        for spec in GROUPS:
            if spec.name in existing:
                continue
            group = Group(name=spec.name, kind=spec.kind, description=spec.description,
                          email=spec.name.lower().replace(" ", "-") + "@northwind.example.com",
                          owner_id=self._director(spec.department))
            self._stamp(group)
            self.session.add(group)
            self._audit_create(group, "group")
            existing[spec.name] = group.id
            members = [p for p in self.org.people if p.department == spec.department and (
                p.job_code in spec.job_codes
                or (spec.with_leadership and p.level in ("vp", "director")))
                and p.lifecycle_state == "active"]
            for person in members:
                member = GroupMember(group_id=group.id, identity_id=self.people[person.employee_id])
                self.session.add(member)
                self.session.flush()
                record(self.session, actor=self.actor, action="group.member_add",
                       object_type="group", object_id=group.id, clock=self.clock,
                       after=snapshot(member))
                self.created["group_member"] += 1
        return existing

    def applications(self, groups: dict[str, uuid.UUID]) -> dict[str, uuid.UUID]:
        existing = self._pairs(select(Application.name, Application.id))
        apps: dict[str, uuid.UUID] = {}
        owners = {"ldap": self._director("IT", 0), "entra": self._director("IT", 1),
                  "keycloak": self._director("Engineering", 0)}
        for spec in APPLICATIONS:
            if spec.name not in existing:
                app = Application(name=spec.name, description=spec.description,
                                  connector_kind=spec.connector_kind, settings=spec.settings,
                                  risk=spec.risk, owner_id=owners[spec.key],
                                  resolution_group_id=groups[spec.resolution_group])
                if self.cipher is not None:
                    # Made here, known to nobody: the demo directory takes its own from here;
                    # the other demo targets are unreachable placeholders.
                    secret = secrets.token_urlsafe(24)
                    key = "bind_password" if spec.connector_kind == "ldap" else "client_secret"
                    app.credentials_encrypted = self.cipher.encrypt({key: secret})
                self._stamp(app)
                self.session.add(app)
                self._audit_create(app, "application")
                existing[spec.name] = app.id
            apps[spec.key] = existing[spec.name]
        return apps

    # catalog --------------------------------------------------------------------------------

    def entitlement_catalog(self, apps: dict[str, uuid.UUID]) -> None:
        rows = self.session.execute(select(Entitlement.application_id, Entitlement.native_id,
                                           Entitlement.id)).all()
        existing = {(app_id, native): ent_id for app_id, native, ent_id in rows}
        for spec in ENTITLEMENTS:
            key = (apps[spec.app], _native_id(spec))
            if key not in existing:
                ent = Entitlement(application_id=key[0], native_id=key[1], name=spec.name,
                                  kind=spec.kind, description=spec.description, risk=spec.risk,
                                  privileged=spec.privileged, data_classification=spec.data,
                                  owner_id=self._director(spec.owner),
                                  requestable=spec.requestable, max_duration_days=spec.max_days)
                self._stamp(ent)
                self.session.add(ent)
                self._audit_create(ent, "entitlement")
                existing[key] = ent.id
            self.entitlements[spec.name] = existing[key]

    def role_catalog(self) -> None:
        self.roles = self._pairs(select(Role.name, Role.id))
        for spec in ROLES:
            if spec.name in self.roles:
                continue
            role = Role(name=spec.name, kind=spec.kind, description=spec.description,
                        owner_id=self._leader(spec.owner), requestable=spec.requestable)
            self._stamp(role)
            self.session.add(role)
            self._audit_create(role, "role")
            self.roles[spec.name] = role.id
            links: list[tuple[str, RoleInclusion | RoleEntitlement]] = [
                ("role.include_role", RoleInclusion(parent_role_id=role.id,
                                                    child_role_id=self.roles[child],
                                                    valid_from=self.now))
                for child in spec.includes
            ]
            links += [("role.add_entitlement", RoleEntitlement(
                role_id=role.id, entitlement_id=self.entitlements[name], valid_from=self.now))
                for name in spec.entitlements]
            for action, link in links:
                self.session.add(link)
                self.session.flush()
                record(self.session, actor=self.actor, action=action, object_type="role",
                       object_id=role.id, clock=self.clock, after=snapshot(link))
                self.created["role_link"] += 1

    def sod_rules(self) -> None:
        existing = set(self.session.scalars(select(SodRule.name)))
        for spec in SOD_RULES:
            if spec.name in existing:
                continue
            rule = SodRule(name=spec.name, description=spec.description,
                           severity=spec.severity, exception_allowed=spec.exception_allowed,
                           enabled=True)
            self._stamp(rule)
            self.session.add(rule)
            self.session.flush()
            for side, names in (("a", spec.side_a), ("b", spec.side_b)):
                for name in names:
                    self.session.add(SodRuleItem(rule_id=rule.id, side=side,
                                                 entitlement_id=self.entitlements[name]))
            self.session.flush()
            after = snapshot(rule) | {
                "side_a": [{"entitlement_id": self.entitlements[n]} for n in spec.side_a],
                "side_b": [{"entitlement_id": self.entitlements[n]} for n in spec.side_b],
            }
            record(self.session, actor=self.actor, action="sod_rule.create",
                   object_type="sod_rule", object_id=rule.id, clock=self.clock, after=after)
            self.created["sod_rule"] += 1

    def request_types(self, groups: dict[str, uuid.UUID]) -> None:
        existing = set(self.session.scalars(select(RequestType.key)))
        for spec in REQUEST_TYPES:
            if spec.key in existing:
                continue
            stages = [StageIn(approver="group", group_id=groups[s.removeprefix("group:")])
                      if s.startswith("group:") else StageIn(approver=s)
                      for s in spec.stages]
            type_in = RequestTypeCreate.model_validate({
                "key": spec.key, "name": spec.name, "description": spec.description,
                "form_schema": spec.form_schema, "approval_stages": stages,
                "auto_approve_max_risk": spec.auto_approve_max_risk,
                "dual_control_group_id": (groups[spec.dual_control_group]
                                          if spec.dual_control_group else None),
                "automatic_max_risk": spec.automatic_max_risk,
                "automatic_classifications": list(spec.automatic_classifications),
                "duration_required": spec.duration_required,
                "max_duration_days": spec.max_duration_days,
                "approval_sla_hours": spec.approval_sla_hours,
            })
            request_types.create_request_type(self.session, type_in=type_in, actor=self.actor,
                                              clock=self.clock)
            self.created["request_type"] += 1

    # access ---------------------------------------------------------------------------------

    def _at(self, days: int | None) -> datetime | None:
        return None if days is None else self.now + timedelta(days=days)

    def _grant(self, identity_id: uuid.UUID, plan: GrantPlan) -> uuid.UUID:
        target = ({"role_id": self.roles[plan.name]} if plan.kind == "role"
                  else {"entitlement_id": self.entitlements[plan.name]})
        made = assignments.grant(self.session, identity_id=identity_id, source=plan.source,
                                 reason=plan.reason, valid_from=self._at(plan.start_days),
                                 valid_until=self._at(plan.end_days), actor=self.actor,
                                 clock=self.clock, **target)
        self.created["assignment"] += 1
        return made.id

    def access(self) -> None:
        """Assignments of the people created in this run (existing people keep theirs)."""
        for plan in self.new_people:
            identity_id = self.people[plan.employee_id]
            granted = [self._grant(identity_id, g) for g in plan.grants]
            if plan.lifecycle_state == "terminated":
                self._leave(plan, identity_id, granted)

    def service_roles(self) -> None:
        """Grant the demo's administrator and auditor persons their service roles."""
        for plan, role in _demo_service_roles(self.org):
            identity_id = self.people[plan.employee_id]
            if auth_repository.grant_of(self.session, identity_id, role) is None:
                auth_service.grant_role(
                    self.session, grant_in=GrantCreate(identity_id=identity_id, role=role),
                    actor=self.actor, clock=self.clock)
                self.created["service_role_grant"] += 1

    def _leave(self, plan: PersonPlan, identity_id: uuid.UUID, granted: list[uuid.UUID]) -> None:
        termination = self._day(plan.termination_days or 0)
        for assignment_id in granted:
            assignments.revoke(self.session, assignment_id=assignment_id,
                               reason=f"leaver: employment ended {termination.isoformat()}",
                               actor=self.actor, clock=self.clock)
        identities.update_identity(
            self.session, identity_id=identity_id,
            identity_in=IdentityUpdate(lifecycle_state="terminated", termination_date=termination),
            actor=self.actor, clock=self.clock)


def _demo_service_roles(org: Any) -> list[tuple[PersonPlan, str]]:
    """Who tries the administrator and auditor pages in the demo: the first identity and
    access engineer, and the first Finance director."""
    return [(org.by_job("IT-IAM")[0], "administrator"),
            (org.leaders("Finance", "director")[0], "auditor")]


def load_demo(session: Session, *, actor: Actor = DEMO_ACTOR, clock: Clock,
              cipher: CredentialCipher | None = None) -> dict[str, int]:
    """Create whatever of the demo organisation is missing; returns counts of what was made.

    Flushes, never commits: run it inside a unit of work.
    """
    loader = _Loader(session, actor, clock, cipher)
    loader.identities()
    groups = loader.groups()
    apps = loader.applications(groups)
    loader.entitlement_catalog(apps)
    loader.role_catalog()
    loader.sod_rules()
    loader.request_types(groups)
    loader.access()
    loader.service_roles()
    created = dict(loader.created)
    load_hr(session, actor=actor, clock=clock, created=created)
    return created
