"""The demo organisation as data: Northwind Traders, its departments, systems, roles and rules.

Everything here is static; :mod:`idgov.setup.demo_people` turns it into people with a seeded
generator, and :mod:`idgov.setup.demo` loads both through the service layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEED = 20260115
DOMAIN = "northwind.example.com"
LDAP_BASE = "dc=northwind,dc=example,dc=com"
DEMO_LDAP_PORT = 10389

GIVEN_NAMES = (
    "Aaliyah", "Adrian", "Aisha", "Alejandro", "Alice", "Amara", "Andrei", "Anna", "Arjun",
    "Astrid", "Beatriz", "Ben", "Camille", "Carlos", "Chen", "Chloe", "Daniel", "Deepa",
    "Diego", "Elena", "Elif", "Emma", "Fatima", "Felix", "Freya", "Gabriel", "Grace", "Hana",
    "Hannah", "Hiroshi", "Ibrahim", "Ines", "Isaac", "Jakob", "James", "Jasmine", "Javier",
    "Jin", "Julia", "Kai", "Karim", "Katarina", "Kwame", "Lars", "Laura", "Leila", "Liam",
    "Lucas", "Lucia", "Maja", "Marco", "Maria", "Mateo", "Maya", "Mei", "Mohammed", "Nadia",
    "Naomi", "Niamh", "Nikhil", "Noah", "Olivia", "Omar", "Oskar", "Priya", "Rafael", "Rahul",
    "Rosa", "Ruth", "Samuel", "Sara", "Sebastian", "Sofia", "Tariq", "Thomas", "Valentina",
    "Victor", "Wei", "Yara", "Yusuf", "Zoe",
)

FAMILY_NAMES = (
    "Abebe", "Adeyemi", "Ahmed", "Andersson", "Bauer", "Becker", "Bennett", "Bianchi",
    "Brennan", "Castillo", "Chen", "Choi", "Costa", "Das", "Dubois", "Evans", "Fernandes",
    "Fischer", "Garcia", "Gupta", "Hansen", "Harris", "Hoffmann", "Hughes", "Ivanova",
    "Jansen", "Johansson", "Kapoor", "Kaur", "Keller", "Khan", "Kim", "Kowalski", "Kumar",
    "Larsen", "Lee", "Lim", "Lopez", "Martin", "Martinez", "Meyer", "Moreau", "Murphy",
    "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Pereira", "Petrov", "Popescu",
    "Quinn", "Reddy", "Richter", "Rossi", "Santos", "Schmidt", "Schneider", "Shah", "Silva",
    "Singh", "Sokolova", "Suzuki", "Tan", "Tanaka", "Taylor", "Thompson", "Torres", "Varga",
    "Wagner", "Walsh", "Wang", "Weber", "Williams", "Wong", "Yamamoto", "Yilmaz", "Zhang",
)


@dataclass(frozen=True)
class Location:
    name: str
    time_zone: str
    country: str


LOCATIONS = {
    "LON": Location("London", "Europe/London", "GB"),
    "NYC": Location("New York", "America/New_York", "US"),
    "BER": Location("Berlin", "Europe/Berlin", "DE"),
    "SIN": Location("Singapore", "Asia/Singapore", "SG"),
    "AUS": Location("Austin", "America/Chicago", "US"),
}


@dataclass(frozen=True)
class Job:
    """A staff job: its code, title, and the business role its holders get as birthright."""

    code: str
    title: str
    role: str | None
    weight: int = 1
    entitlements: tuple[str, ...] = ()  # granted directly as birthright, besides the role


@dataclass(frozen=True)
class Department:
    name: str
    code: str
    cost_center: str
    locations: tuple[str, ...]  # the first is where the leadership sits
    staff: int
    jobs: tuple[Job, ...]
    leadership_role: str | None = None
    leadership_entitlements: tuple[str, ...] = ()


DEPARTMENTS = (
    Department("Finance", "FIN", "CC-2100", ("LON", "NYC", "SIN"), 25, (
        Job("FIN-AP", "Accounts Payable Clerk", "Accounts Payable Clerk", 3),
        Job("FIN-APM", "Accounts Payable Specialist", "Accounts Payable Manager", 1),
        Job("FIN-GL", "General Ledger Accountant", "General Ledger Accountant", 3),
        Job("FIN-FPA", "Financial Analyst", "Finance Base", 2),
    ), leadership_role="Financial Controller"),
    Department("Procurement", "PRC", "CC-2200", ("BER", "LON"), 15, (
        Job("PRC-BUY", "Buyer", None, 3, ("Procurement-PO-Create",)),
        Job("PRC-VND", "Vendor Master Specialist", None, 1, ("Procurement-PO-Create",)),
    ), leadership_entitlements=("Procurement-PO-Approve",)),
    Department("Engineering", "ENG", "CC-3100", ("AUS", "BER", "SIN", "LON"), 45, (
        Job("ENG-SWE", "Software Engineer", "Software Engineer", 5),
        Job("ENG-SRE", "Site Reliability Engineer", "Site Reliability Engineer", 2),
        Job("ENG-QA", "QA Engineer", "Software Engineer", 1),
    ), leadership_role="Software Engineer"),
    Department("Sales", "SLS", "CC-4100", ("NYC", "LON", "SIN", "AUS"), 35, (
        Job("SLS-AE", "Account Executive", "Sales Representative", 4),
        Job("SLS-SDR", "Sales Development Representative", "Sales Representative", 2),
        Job("SLS-OPS", "Sales Operations Analyst", "Sales Representative", 1),
    ), leadership_role="Sales Representative"),
    Department("HR", "HRM", "CC-5100", ("LON", "NYC"), 14, (
        Job("HR-GEN", "HR Generalist", "HR Generalist", 3),
        Job("HR-PAY", "Payroll Administrator", "Payroll Administrator", 1),
        Job("HR-REC", "Recruiter", "HR Generalist", 1),
    ), leadership_role="HR Generalist"),
    Department("IT", "ITS", "CC-6100", ("LON", "AUS", "SIN"), 22, (
        Job("IT-SD", "Service Desk Analyst", "IT Operations Base", 3),
        Job("IT-IAM", "Identity Administrator", "Identity Administrator", 1),
        Job("IT-NET", "Network Engineer", "IT Operations Base", 1),
        Job("IT-SEC", "Security Analyst", "IT Operations Base", 1),
    ), leadership_role="IT Operations Base"),
    Department("Legal", "LGL", "CC-7100", ("LON", "NYC", "BER"), 12, (
        Job("LGL-CNS", "Legal Counsel", None, 2, ("Legal-Contracts-RW",)),
        Job("LGL-PAR", "Paralegal", None, 1, ("Legal-Contracts-RW",)),
    ), leadership_entitlements=("Legal-Contracts-RW", "Legal-Hold-Admin")),
    Department("Operations", "OPS", "CC-8100", ("AUS", "BER", "SIN"), 25, (
        Job("OPS-LOG", "Logistics Coordinator", None, 3, ("WMS-Operator",)),
        Job("OPS-FAC", "Facilities Coordinator", None, 1, ("Facilities-Badge-Admin",)),
        Job("OPS-CHG", "Change Manager", "Change Manager", 1),
    )),
)


@dataclass(frozen=True)
class AppSpec:
    key: str
    name: str
    connector_kind: str
    description: str
    settings: dict[str, Any]
    risk: str
    resolution_group: str


APPLICATIONS = (
    AppSpec("ldap", "Corporate Directory", "ldap",
            "OpenLDAP directory behind VPN, file shares, SAP and on-premises finance systems",
            # idgov serve runs this directory itself when slapd is installed (var/demo-ldap).
            {"url": f"ldap://127.0.0.1:{DEMO_LDAP_PORT}", "base_dn": LDAP_BASE,
             "users_ou": f"ou=people,{LDAP_BASE}", "groups_ou": f"ou=groups,{LDAP_BASE}",
             "disabled_ou": f"ou=disabled,{LDAP_BASE}", "disable_method": "move",
             "bind_dn": f"cn=admin,{LDAP_BASE}", "group_object_class": "groupOfNames",
             "embedded_directory": True},
            "high", "Directory Services"),
    AppSpec("entra", "Northwind Entra ID", "entra",
            "Microsoft Entra ID tenant: Microsoft 365, SaaS applications and directory roles",
            {"tenant_id": "6f1c8a2e-4b7d-4c55-9a3e-2d8f0b1c7e94",
             "client_id": "0b9d5e61-3c2a-4f8e-b7a4-9e6d1f2c3a58",
             "authority": "https://login.microsoftonline.com/"
                          "6f1c8a2e-4b7d-4c55-9a3e-2d8f0b1c7e94",
             "graph_url": "https://graph.microsoft.com/v1.0", "upn_domain": DOMAIN},
            "critical", "IAM Operations"),
    AppSpec("keycloak", "Engineering Keycloak", "keycloak",
            "Keycloak realm for engineering tools: GitHub, AWS, CI and observability",
            {"server_url": "https://sso.northwind.example.com/", "realm": "engineering",
             "client_id": "idgov-provisioner"},
            "high", "Cloud Platform"),
)


@dataclass(frozen=True)
class EntSpec:
    name: str
    app: str
    description: str
    risk: str = "low"
    privileged: bool = False
    data: str = "none"  # data classification: none, pii, regulated
    owner: str = "IT"  # department whose leader owns it
    kind: str = "group"
    max_days: int | None = None
    requestable: bool = True


ENTITLEMENTS = (
    # Corporate Directory (LDAP groups)
    EntSpec("All-Staff", "ldap", "Every employee and contractor", requestable=False),
    EntSpec("VPN-Users", "ldap", "Remote access VPN"),
    EntSpec("Finance-Share-RW", "ldap", "Finance file share, read and write", "medium",
            owner="Finance"),
    EntSpec("SAP-AP-Invoice-Enter", "ldap", "Enter vendor invoices in SAP accounts payable",
            "medium", data="regulated", owner="Finance"),
    EntSpec("SAP-AP-Vendor-Create", "ldap", "Create and change vendor master records",
            "high", data="regulated", owner="Finance"),
    EntSpec("SAP-AP-Payment-Approve", "ldap", "Approve vendor payments", "high",
            data="regulated", owner="Finance"),
    EntSpec("SAP-AP-Payment-Run", "ldap", "Execute the payment run", "high",
            data="regulated", owner="Finance"),
    EntSpec("GL-Journal-Post", "ldap", "Post general ledger journals", "medium",
            data="regulated", owner="Finance"),
    EntSpec("GL-Journal-Approve", "ldap", "Approve general ledger journals", "high",
            data="regulated", owner="Finance"),
    EntSpec("GL-Reports-Read", "ldap", "Read financial reports", "low", data="regulated",
            owner="Finance"),
    EntSpec("Payroll-Admin", "ldap", "Administer payroll runs and pay data", "critical",
            privileged=True, data="pii", owner="HR"),
    EntSpec("Payroll-Read", "ldap", "Read payroll reports", "medium", data="pii", owner="HR"),
    EntSpec("HR-Records-Read", "ldap", "Read employee records", "medium", data="pii",
            owner="HR"),
    EntSpec("HR-Records-Edit", "ldap", "Change employee records", "high", data="pii",
            owner="HR"),
    EntSpec("Procurement-PO-Create", "ldap", "Create purchase orders", "medium",
            owner="Procurement"),
    EntSpec("Procurement-PO-Approve", "ldap", "Approve purchase orders", "high",
            owner="Procurement"),
    EntSpec("Legal-Contracts-RW", "ldap", "Contract repository, read and write", "medium",
            data="regulated", owner="Legal"),
    EntSpec("Legal-Hold-Admin", "ldap", "Place and release legal holds", "high",
            privileged=True, data="regulated", owner="Legal"),
    EntSpec("WMS-Operator", "ldap", "Warehouse management system operator", "medium",
            owner="Operations"),
    EntSpec("Facilities-Badge-Admin", "ldap", "Administer building access badges", "high",
            privileged=True, data="pii", owner="Operations"),
    # Entra ID
    EntSpec("M365-E3-License", "entra", "Microsoft 365 E3 licence", requestable=False),
    EntSpec("Teams-Users", "entra", "Microsoft Teams"),
    EntSpec("SharePoint-Finance-Members", "entra", "Finance SharePoint site", "medium",
            data="regulated", owner="Finance"),
    EntSpec("Salesforce-User", "entra", "Salesforce CRM user", "medium", data="pii",
            owner="Sales", kind="app_role"),
    EntSpec("Salesforce-Admin", "entra", "Salesforce CRM administrator", "high",
            privileged=True, data="pii", owner="Sales", kind="app_role"),
    EntSpec("Jira-User", "entra", "Jira work tracking", kind="app_role"),
    EntSpec("Confluence-User", "entra", "Confluence wiki", kind="app_role"),
    EntSpec("ServiceNow-ITIL", "entra", "ServiceNow fulfiller (ITIL) licence", "medium",
            kind="app_role"),
    EntSpec("ServiceNow-Change-Approver", "entra", "Approve changes in the change advisory board",
            "high", owner="Operations", kind="app_role"),
    EntSpec("Entra-User-Administrator", "entra", "Entra ID User Administrator directory role",
            "critical", privileged=True, data="pii", kind="role"),
    EntSpec("Entra-Global-Reader", "entra", "Entra ID Global Reader directory role", "medium",
            kind="role"),
    EntSpec("Audit-Log-Admin", "entra", "Administer and purge the audit log (Purview)",
            "critical", privileged=True, data="regulated", owner="Legal", kind="role"),
    EntSpec("Intune-Device-Admin", "entra", "Intune device administrator", "high",
            privileged=True, kind="role"),
    # Engineering Keycloak
    EntSpec("GitHub-Org-Member", "keycloak", "Member of the GitHub organisation",
            owner="Engineering", kind="role"),
    EntSpec("GitHub-Org-Owner", "keycloak", "Owner of the GitHub organisation", "critical",
            privileged=True, owner="Engineering", kind="role", max_days=90),
    EntSpec("CI-Pipeline-User", "keycloak", "Run CI pipelines", owner="Engineering"),
    EntSpec("AWS-Dev-Developer", "keycloak", "Developer access to the AWS development accounts",
            "medium", owner="Engineering", kind="role"),
    EntSpec("AWS-Prod-ReadOnly", "keycloak", "Read-only access to AWS production", "medium",
            data="pii", owner="Engineering", kind="role"),
    EntSpec("AWS-Prod-Admin", "keycloak", "Administrator of AWS production accounts",
            "critical", privileged=True, data="pii", owner="Engineering", kind="role",
            max_days=90),
    EntSpec("Prod-Deploy", "keycloak", "Deploy to production", "high", privileged=True,
            owner="Engineering"),
    EntSpec("Grafana-Viewer", "keycloak", "Dashboards and alerts", owner="Engineering"),
    EntSpec("PagerDuty-Responder", "keycloak", "On-call responder", owner="Engineering"),
)


@dataclass(frozen=True)
class RoleSpec:
    name: str
    kind: str
    description: str
    owner: str
    includes: tuple[str, ...] = ()
    entitlements: tuple[str, ...] = ()
    requestable: bool = True


ROLES = (
    RoleSpec("All Staff Base", "technical", "What every person needs on day one", "IT",
             entitlements=("All-Staff", "VPN-Users", "M365-E3-License", "Teams-Users",
                           "Confluence-User"), requestable=False),
    RoleSpec("Finance Base", "technical", "Common access of the finance function", "Finance",
             entitlements=("Finance-Share-RW", "SharePoint-Finance-Members", "GL-Reports-Read")),
    RoleSpec("Engineering Base", "technical", "Common access of engineers", "Engineering",
             entitlements=("GitHub-Org-Member", "CI-Pipeline-User", "AWS-Dev-Developer",
                           "Grafana-Viewer", "Jira-User")),
    RoleSpec("IT Operations Base", "technical", "Common access of IT operations", "IT",
             entitlements=("ServiceNow-ITIL", "Entra-Global-Reader", "Jira-User")),
    RoleSpec("Employee", "business", "Birthright of every employee and contractor", "HR",
             includes=("All Staff Base",), requestable=False),
    RoleSpec("Accounts Payable Clerk", "business", "Enter invoices and maintain vendors",
             "Finance", includes=("Finance Base",),
             entitlements=("SAP-AP-Invoice-Enter", "SAP-AP-Vendor-Create")),
    RoleSpec("Accounts Payable Manager", "business", "Approve and run vendor payments",
             "Finance", includes=("Finance Base",),
             entitlements=("SAP-AP-Payment-Approve", "SAP-AP-Payment-Run")),
    RoleSpec("General Ledger Accountant", "business", "Prepare and post journals", "Finance",
             includes=("Finance Base",), entitlements=("GL-Journal-Post",)),
    RoleSpec("Financial Controller", "business", "Review and approve journals", "Finance",
             includes=("Finance Base",), entitlements=("GL-Journal-Approve", "Payroll-Read")),
    RoleSpec("Payroll Administrator", "business", "Run payroll", "HR",
             entitlements=("Payroll-Admin", "Payroll-Read", "HR-Records-Read")),
    RoleSpec("HR Generalist", "business", "Maintain employee records", "HR",
             entitlements=("HR-Records-Read", "HR-Records-Edit")),
    RoleSpec("Software Engineer", "business", "Build and test software", "Engineering",
             includes=("Engineering Base",)),
    RoleSpec("Site Reliability Engineer", "business", "Run production", "Engineering",
             includes=("Engineering Base",),
             entitlements=("AWS-Prod-ReadOnly", "Prod-Deploy", "PagerDuty-Responder")),
    RoleSpec("Change Manager", "business", "Chair the change advisory board", "Operations",
             includes=("IT Operations Base",), entitlements=("ServiceNow-Change-Approver",)),
    RoleSpec("Identity Administrator", "business", "Administer accounts in Entra ID", "IT",
             includes=("IT Operations Base",), entitlements=("Entra-User-Administrator",)),
    RoleSpec("Sales Representative", "business", "Work accounts and opportunities", "Sales",
             entitlements=("Salesforce-User",)),
)


@dataclass(frozen=True)
class SodSpec:
    name: str
    description: str
    severity: str
    side_a: tuple[str, ...]  # entitlement names
    side_b: tuple[str, ...]
    exception_allowed: bool = True


SOD_RULES = (
    SodSpec("Create vendor vs approve vendor payment",
            "Whoever creates vendors must not approve payments to them (fictitious vendor fraud)",
            "critical", ("SAP-AP-Vendor-Create",), ("SAP-AP-Payment-Approve",)),
    SodSpec("Post journal vs approve journal",
            "Journals are posted and approved by different people (four-eyes principle)",
            "high", ("GL-Journal-Post",), ("GL-Journal-Approve",)),
    SodSpec("Payroll admin vs HR records edit",
            "Whoever runs payroll must not change the employee records it pays",
            "high", ("Payroll-Admin",), ("HR-Records-Edit",)),
    SodSpec("Production deploy vs change approval",
            "Whoever deploys to production must not approve their own changes",
            "high", ("Prod-Deploy",), ("ServiceNow-Change-Approver",)),
    SodSpec("User administration vs audit log administration",
            "Whoever administers accounts must not be able to erase the trail of it",
            "critical", ("Entra-User-Administrator",), ("Audit-Log-Admin",),
            exception_allowed=False),
)


@dataclass(frozen=True)
class GroupSpec:
    name: str
    kind: str
    description: str
    department: str
    job_codes: tuple[str, ...] = ()  # empty: the department's leadership
    with_leadership: bool = True
    extra: dict[str, str] = field(default_factory=dict)


GROUPS = (
    GroupSpec("IAM Operations", "resolution", "Works failed provisioning in Entra ID and "
              "access questions", "IT", ("IT-IAM", "IT-SEC")),
    GroupSpec("Directory Services", "resolution", "Owns the corporate LDAP directory", "IT",
              ("IT-NET", "IT-SD")),
    GroupSpec("Cloud Platform", "resolution", "Owns Keycloak, AWS and the CI platform",
              "Engineering", ("ENG-SRE",)),
    GroupSpec("Service Desk", "team", "First line support", "IT", ("IT-SD",),
              with_leadership=False),
    GroupSpec("Finance Leadership", "team", "Finance VP and directors", "Finance"),
    GroupSpec("Change Advisory Board", "team", "Reviews and approves changes", "Operations",
              ("OPS-CHG",)),
)


# Request types: each with its form (JSON Schema, Draft 2020-12) and its approval policy.
_JUSTIFICATION = {"type": "string", "title": "Justification", "minLength": 10,
                  "maxLength": 2000,
                  "description": "Why the access is needed, in a sentence or two"}
_TICKET = {"type": "string", "title": "Ticket reference", "pattern": "^[A-Z]{2,10}-[0-9]{1,9}$",
           "description": "The change or incident ticket, e.g. CHG-10423"}
_ACK = {"type": "boolean", "title": "I will handle personal or regulated data as the data "
        "handling policy requires",
        "description": "Required when the access reaches PII or regulated data"}


@dataclass(frozen=True)
class RequestTypeSpec:
    key: str
    name: str
    description: str
    form_schema: dict[str, Any]
    stages: tuple[str, ...]  # "manager", "owner", or "group:<group name>"
    auto_approve_max_risk: str | None = None
    dual_control_group: str | None = None
    automatic_max_risk: str | None = "high"
    automatic_classifications: tuple[str, ...] = ("none", "pii")
    duration_required: bool = False
    max_duration_days: int | None = None
    approval_sla_hours: int = 72


REQUEST_TYPES = (
    RequestTypeSpec(
        "application-access", "Application access",
        "Everyday access to an application: a group, a role or an app role.",
        {"type": "object", "additionalProperties": False,
         "required": ["justification"],
         "properties": {"justification": _JUSTIFICATION,
                        "business_need": {"type": "string", "title": "Business need",
                                          "maxLength": 2000},
                        "data_handling_acknowledged": _ACK}},
        stages=("manager", "owner"), auto_approve_max_risk="low",
        dual_control_group="IAM Operations"),
    RequestTypeSpec(
        "privileged-access", "Privileged access",
        "Administrative or otherwise privileged access. Always approved by two people.",
        {"type": "object", "additionalProperties": False,
         "required": ["justification", "business_need", "ticket_reference"],
         "properties": {"justification": _JUSTIFICATION,
                        "business_need": {"type": "string", "title": "Business need",
                                          "minLength": 10, "maxLength": 2000},
                        "ticket_reference": _TICKET,
                        "data_handling_acknowledged": _ACK}},
        stages=("manager", "owner"), dual_control_group="IAM Operations",
        automatic_max_risk="critical", automatic_classifications=("none",),
        approval_sla_hours=24),
    RequestTypeSpec(
        "temporary-elevated-access", "Temporary elevated access",
        "Elevated access for a fixed time, for an incident or a change; ends by itself.",
        {"type": "object", "additionalProperties": False,
         "required": ["justification", "ticket_reference", "duration_hours"],
         "properties": {"justification": _JUSTIFICATION,
                        "ticket_reference": _TICKET,
                        "duration_hours": {"type": "integer", "title": "Duration (hours)",
                                           "minimum": 1, "maximum": 168},
                        "data_handling_acknowledged": _ACK}},
        stages=("manager",), dual_control_group="IAM Operations",
        duration_required=True, max_duration_days=7, approval_sla_hours=4),
)
