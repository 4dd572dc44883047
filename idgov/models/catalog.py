"""The governed catalog: entitlements, roles and their composition, SoD rules and exceptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, SessionTransaction, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

ENTITLEMENT_KINDS = ("group", "role", "app_role")
DATA_CLASSIFICATIONS = ("none", "pii", "regulated")
ROLE_KINDS = ("business", "technical")
SOD_SEVERITIES = ("low", "medium", "high", "critical")


class Entitlement(IdMixin, TimestampMixin, Base):
    """One grantable thing in one application: a group, a role or an app role."""

    __tablename__ = "entitlements"
    __table_args__ = (
        Index("uq_entitlements_application_id_native_id", "application_id", "native_id",
              unique=True),
        CheckConstraint("kind IN ('group', 'role', 'app_role')", name="kind"),
        CheckConstraint("risk IN ('low', 'medium', 'high', 'critical')", name="risk"),
        CheckConstraint(
            "data_classification IN ('none', 'pii', 'regulated')", name="data_classification"
        ),
    )

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(16), default="group")
    native_id: Mapped[str] = mapped_column(String(500))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    risk: Mapped[str] = mapped_column(String(16), default="low")
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    data_classification: Mapped[str] = mapped_column(String(16), default="none")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    requestable: Mapped[bool] = mapped_column(Boolean, default=True)
    max_duration_days: Mapped[int | None] = mapped_column(Integer)


class Role(IdMixin, TimestampMixin, Base):
    """A business or technical role: a named bundle of included roles and entitlements."""

    __tablename__ = "roles"
    __table_args__ = (CheckConstraint("kind IN ('business', 'technical')", name="kind"),)

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(16), default="business")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    requestable: Mapped[bool] = mapped_column(Boolean, default=True)


class RoleInclusion(IdMixin, Base):
    """role -> included role, valid from .. until; end-dated, never deleted."""

    __tablename__ = "role_inclusions"
    __table_args__ = (
        CheckConstraint("parent_role_id <> child_role_id", name="not_self"),
        Index("ix_role_inclusions_parent", "parent_role_id"),
        Index("ix_role_inclusions_child", "child_role_id"),
    )

    parent_role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    child_role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(2000))
    # Set when a role composition review confirms the link (certification).
    last_certified_at: Mapped[datetime | None]
    last_certified_by: Mapped[str | None] = mapped_column(String(400))


class RoleEntitlement(IdMixin, Base):
    """role -> entitlement, valid from .. until; end-dated, never deleted."""

    __tablename__ = "role_entitlements"
    __table_args__ = (
        Index("ix_role_entitlements_role", "role_id"),
        Index("ix_role_entitlements_entitlement", "entitlement_id"),
    )

    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT")
    )
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(2000))
    # Set when a role composition review confirms the link (certification).
    last_certified_at: Mapped[datetime | None]
    last_certified_by: Mapped[str | None] = mapped_column(String(400))


class SodRule(IdMixin, TimestampMixin, Base):
    """Two sets of roles or entitlements that one identity must not hold together."""

    __tablename__ = "sod_rules"
    __table_args__ = (
        CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name="severity"),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000))
    severity: Mapped[str] = mapped_column(String(16), default="high")
    exception_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class SodRuleItem(IdMixin, Base):
    """One member of side ``a`` or ``b`` of a rule: a role or an entitlement."""

    __tablename__ = "sod_rule_items"
    __table_args__ = (
        CheckConstraint("side IN ('a', 'b')", name="side"),
        CheckConstraint(
            "(role_id IS NULL) <> (entitlement_id IS NULL)", name="role_xor_entitlement"
        ),
        Index("ix_sod_rule_items_rule", "rule_id"),
    )

    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sod_rules.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(String(1))
    role_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT")
    )


class SodException(IdMixin, TimestampMixin, Base):
    """A granted exception to a rule for one identity, with its mitigating control."""

    __tablename__ = "sod_exceptions"
    __table_args__ = (Index("ix_sod_exceptions_rule_identity", "rule_id", "identity_id"),)

    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sod_rules.id", ondelete="CASCADE"))
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE")
    )
    control: Mapped[str] = mapped_column(String(2000))
    approver_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(2000))


class PolicyRevision(Base):
    """One row counting changes to the catalog policy reads (roles, entitlements, their
    links, SoD rules), so that a built policy snapshot can be reused until the next change.

    ``epoch`` is drawn afresh whenever the row is (re)created, so a cache never mistakes a
    different database (or an emptied one) that happens to reach the same ``value``.
    """

    __tablename__ = "policy_revision"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[uuid.UUID]
    value: Mapped[int] = mapped_column(Integer, default=0)


# The models a policy snapshot is built from: any change to them is a new policy revision.
POLICY_MODELS: tuple[type[Base], ...] = (
    Entitlement, Role, RoleInclusion, RoleEntitlement, SodRule, SodRuleItem)
# Set in ``session.info`` while the session's transaction holds an uncommitted bump.
POLICY_CHANGED = "idgov.policy_revision.changed"


def bump_policy_revision(session: Session) -> None:
    """Count a change of the policy catalog, in the session's own transaction (one upsert)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table: Any = PolicyRevision.__table__
    stmt = insert(table).values(id=1, epoch=uuid.uuid4(), value=1)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.id],
                                      set_={"value": table.c.value + 1})
    session.connection().execute(stmt)
    session.info[POLICY_CHANGED] = True


@sa_event.listens_for(Session, "before_flush")
def _policy_objects_flushed(session: Session, _context: Any, _instances: Any) -> None:
    changed = chain(session.new, session.deleted,
                    (o for o in session.dirty if session.is_modified(o)))
    if any(isinstance(obj, POLICY_MODELS) for obj in changed):
        bump_policy_revision(session)


@sa_event.listens_for(Session, "do_orm_execute")
def _policy_rows_bulk_changed(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, POLICY_MODELS):
        bump_policy_revision(state.session)


@sa_event.listens_for(Session, "after_transaction_end")
def _policy_transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction: committed or rolled back
        session.info.pop(POLICY_CHANGED, None)
