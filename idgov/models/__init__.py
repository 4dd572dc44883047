"""Every core ORM model, imported here so that metadata and Alembic see them all."""

from idgov.db.base import Base
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditChainHead, AuditEvent
from idgov.models.auth import ApiToken, ServicePrincipal, ServiceRoleGrant
from idgov.models.catalog import (
    Entitlement,
    Role,
    RoleEntitlement,
    RoleInclusion,
    SodException,
    SodRule,
    SodRuleItem,
)
from idgov.models.identity import Group, GroupMember, Identity

__all__ = [
    "Account",
    "ApiToken",
    "Application",
    "Assignment",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "Entitlement",
    "Group",
    "GroupMember",
    "Identity",
    "Role",
    "RoleEntitlement",
    "RoleInclusion",
    "ServicePrincipal",
    "ServiceRoleGrant",
    "SodException",
    "SodRule",
    "SodRuleItem",
]
