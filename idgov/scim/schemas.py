"""Static SCIM discovery documents (RFC 7643 §5-7) and the attribute definitions they hold.

The schema definitions are also what the filter evaluator and the PATCH engine read:
attribute names are matched case-insensitively, strings compared case-insensitively unless
the attribute is ``caseExact``, booleans and date-times recognised by ``type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

MAX_RESULTS = 200


def _attr(name: str, type_: str = "string", *, multi: bool = False, case_exact: bool = False,
          mutability: str = "readWrite", returned: str = "default", uniqueness: str = "none",
          required: bool = False, sub: tuple[dict[str, Any], ...] = (),
          description: str = "", canonical: tuple[str, ...] = (),
          refs: tuple[str, ...] = ()) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name, "type": type_, "multiValued": multi, "description": description or name,
        "required": required, "caseExact": case_exact, "mutability": mutability,
        "returned": returned, "uniqueness": uniqueness,
    }
    if sub:
        doc["subAttributes"] = list(sub)
    if canonical:
        doc["canonicalValues"] = list(canonical)
    if refs:
        doc["referenceTypes"] = list(refs)
    return doc


USER_ATTRIBUTES: tuple[dict[str, Any], ...] = (
    _attr("userName", required=True, uniqueness="server",
          description="Unique identifier for the user, compared case-insensitively"),
    _attr("name", "complex", sub=(
        _attr("formatted", mutability="readOnly"),
        _attr("familyName"), _attr("givenName"),
    )),
    _attr("displayName"),
    _attr("title", description="The job title (identity job_title)"),
    _attr("userType", description="Employment type: employee, contractor, intern, "
          "temporary or vendor", canonical=("employee", "contractor", "intern", "temporary",
                                            "vendor")),
    _attr("timezone", description="IANA time zone of the worker"),
    _attr("active", "boolean", description="False once the worker is terminated"),
    _attr("emails", "complex", multi=True, description="Only the primary work address is kept",
          sub=(_attr("value"), _attr("type", canonical=("work",)),
               _attr("primary", "boolean"), _attr("display", mutability="readOnly"))),
    _attr("addresses", "complex", multi=True,
          description="Only the work address's locality is kept: it is the worker's location",
          sub=(_attr("locality"), _attr("type", canonical=("work",)),
               _attr("primary", "boolean"), _attr("formatted", mutability="readOnly"))),
    _attr("groups", "complex", multi=True, mutability="readOnly",
          description="Organisational groups the user belongs to (change through Groups)",
          sub=(_attr("value", mutability="readOnly"),
               _attr("$ref", "reference", mutability="readOnly", refs=("Group",)),
               _attr("display", mutability="readOnly"),
               _attr("type", mutability="readOnly"))),
)

ENTERPRISE_ATTRIBUTES: tuple[dict[str, Any], ...] = (
    _attr("employeeNumber", description="The HR key (identity employee_id); immutable once set"),
    _attr("costCenter"), _attr("organization"), _attr("division"), _attr("department"),
    _attr("manager", "complex", sub=(
        _attr("value", description="The SCIM id of the manager"),
        _attr("$ref", "reference", refs=("User",)),
        _attr("displayName", mutability="readOnly"),
    )),
)

GROUP_ATTRIBUTES: tuple[dict[str, Any], ...] = (
    _attr("displayName", required=True, uniqueness="server"),
    _attr("members", "complex", multi=True, sub=(
        _attr("value", mutability="immutable"),
        _attr("$ref", "reference", mutability="immutable", refs=("User",)),
        _attr("display", mutability="readOnly"),
        _attr("type", mutability="immutable", canonical=("User",)),
    )),
)

COMMON_ATTRIBUTES: tuple[dict[str, Any], ...] = (
    _attr("id", case_exact=True, mutability="readOnly", returned="always",
          uniqueness="server"),
    _attr("externalId", case_exact=True),
    _attr("meta", "complex", mutability="readOnly", sub=(
        _attr("resourceType", case_exact=True, mutability="readOnly"),
        _attr("created", "dateTime", mutability="readOnly"),
        _attr("lastModified", "dateTime", mutability="readOnly"),
        _attr("location", "reference", case_exact=True, mutability="readOnly"),
        _attr("version", case_exact=True, mutability="readOnly"),
    )),
)

SCHEMA_DOCS: dict[str, tuple[str, str, tuple[dict[str, Any], ...]]] = {
    USER: ("User", "User Account", USER_ATTRIBUTES),
    ENTERPRISE: ("EnterpriseUser", "Enterprise User", ENTERPRISE_ATTRIBUTES),
    GROUP: ("Group", "Organisational group (department, team); grants no access itself",
            GROUP_ATTRIBUTES),
}


@dataclass(frozen=True)
class ResourceKind:
    """A SCIM resource type served here."""

    name: str
    endpoint: str
    schema: str
    extensions: tuple[str, ...]

    @property
    def schema_ids(self) -> tuple[str, ...]:
        return (self.schema, *self.extensions)


USER_KIND = ResourceKind("User", "/Users", USER, (ENTERPRISE,))
GROUP_KIND = ResourceKind("Group", "/Groups", GROUP, ())
KINDS = {"User": USER_KIND, "Group": GROUP_KIND}


def find_attr(schema_id: str, name: str) -> dict[str, Any] | None:
    """The definition of attribute ``name`` (any case) of a schema, common attributes
    included for the core schemas."""
    attrs = SCHEMA_DOCS[schema_id][2]
    if schema_id in (USER, GROUP):
        attrs = attrs + COMMON_ATTRIBUTES
    lowered = name.lower()
    return next((a for a in attrs if a["name"].lower() == lowered), None)


def find_sub(attr: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The definition of sub-attribute ``name`` (any case) of a complex attribute."""
    lowered = name.lower()
    return next((s for s in attr.get("subAttributes", ()) if s["name"].lower() == lowered),
                None)


def _meta(resource_type: str, location: str) -> dict[str, Any]:
    return {"resourceType": resource_type, "location": location}


def schema_doc(schema_id: str, base: str) -> dict[str, Any]:
    """The Schema resource of one schema (RFC 7643 §7)."""
    name, description, attrs = SCHEMA_DOCS[schema_id]
    return {
        "schemas": [SCHEMA], "id": schema_id, "name": name, "description": description,
        "attributes": list(attrs), "meta": _meta("Schema", f"{base}/Schemas/{schema_id}"),
    }


def resource_type_doc(kind: ResourceKind, base: str) -> dict[str, Any]:
    """The ResourceType resource of one resource type (RFC 7643 §6)."""
    doc: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE], "id": kind.name, "name": kind.name,
        "endpoint": kind.endpoint, "description": SCHEMA_DOCS[kind.schema][1],
        "schema": kind.schema,
        "meta": _meta("ResourceType", f"{base}/ResourceTypes/{kind.name}"),
    }
    if kind.extensions:
        doc["schemaExtensions"] = [{"schema": e, "required": False} for e in kind.extensions]
    return doc


def service_provider_config(base: str) -> dict[str, Any]:
    """What this service provider supports (RFC 7643 §5)."""
    return {
        "schemas": [SPC],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "Bearer token",
            "description": "An idgov API token (role hr-system or administrator) or an OIDC "
                           "access token, in the Authorization header",
            "primary": True,
        }],
        "meta": _meta("ServiceProviderConfig", f"{base}/ServiceProviderConfig"),
    }
