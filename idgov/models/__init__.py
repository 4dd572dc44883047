"""Every core ORM model, imported here so that metadata and Alembic see them all."""

from idgov.db.base import Base
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditChainHead, AuditEvent
from idgov.models.auth import ApiToken, ServicePrincipal, ServiceRoleGrant
from idgov.models.catalog import (
    Entitlement,
    PolicyRevision,
    Role,
    RoleEntitlement,
    RoleInclusion,
    SodException,
    SodRule,
    SodRuleItem,
)
from idgov.models.hr import (
    BirthrightRule,
    DayOneLink,
    FeedChange,
    FeedRun,
    HrSource,
    LifecycleEvent,
    ReviewFlag,
)
from idgov.models.identity import Group, GroupMember, Identity
from idgov.models.notifications import Notification
from idgov.models.provisioning import (
    DriftItem,
    FulfilmentTask,
    ProvisioningOperation,
    ReconciliationRun,
    TargetHealth,
)
from idgov.models.requests import (
    AccessRequest,
    Approval,
    ApprovalAuthority,
    ApprovalStep,
    ApprovalStepApprover,
    Delegation,
    NumberSequence,
    RequestLine,
    RequestType,
)
from idgov.models.siem import SiemSink

__all__ = [
    "AccessRequest",
    "Account",
    "ApiToken",
    "Application",
    "Approval",
    "ApprovalAuthority",
    "ApprovalStep",
    "ApprovalStepApprover",
    "Assignment",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "BirthrightRule",
    "DayOneLink",
    "Delegation",
    "DriftItem",
    "Entitlement",
    "FeedChange",
    "FeedRun",
    "FulfilmentTask",
    "Group",
    "GroupMember",
    "HrSource",
    "Identity",
    "LifecycleEvent",
    "Notification",
    "NumberSequence",
    "PolicyRevision",
    "ProvisioningOperation",
    "ReconciliationRun",
    "RequestLine",
    "RequestType",
    "ReviewFlag",
    "Role",
    "RoleEntitlement",
    "RoleInclusion",
    "ServicePrincipal",
    "ServiceRoleGrant",
    "SiemSink",
    "SodException",
    "SodRule",
    "SodRuleItem",
    "TargetHealth",
]
