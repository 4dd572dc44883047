"""The Keycloak emulator's in-memory data model: realms, users, groups, roles, clients,
tokens and injected faults, with the constants that bound what Keycloak accepts.

See :mod:`tests.emulators.keycloak` for the emulator itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TOKEN_LIFETIME_SECONDS = 300

# UserRepresentation's fields (Keycloak 24-26); anything else is refused.
USER_FIELDS = frozenset({
    "id", "username", "firstName", "lastName", "email", "emailVerified", "attributes",
    "userProfileMetadata", "self", "origin", "createdTimestamp", "enabled", "totp",
    "federationLink", "serviceAccountClientId", "credentials", "disableableCredentialTypes",
    "requiredActions", "federatedIdentities", "realmRoles", "clientRoles", "clientConsents",
    "notBefore", "applicationRoles", "socialLinks", "groups", "access",
})
GROUP_FIELDS = frozenset({
    "id", "name", "description", "path", "parentId", "subGroupCount", "subGroups",
    "attributes", "realmRoles", "clientRoles", "access",
})
ROLE_FIELDS = frozenset({
    "id", "name", "description", "scopeParamRequired", "composite", "composites",
    "clientRole", "containerId", "attributes",
})
REQUIRED_ACTIONS = frozenset({
    "CONFIGURE_TOTP", "TERMS_AND_CONDITIONS", "UPDATE_PASSWORD", "UPDATE_PROFILE",
    "VERIFY_EMAIL", "delete_account", "webauthn-register", "update_user_locale",
})
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Role:
    id: str
    name: str
    container_id: str
    client_role: bool
    description: str = ""
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def representation(self) -> dict[str, Any]:
        rep: dict[str, Any] = {"id": self.id, "name": self.name, "composite": False,
                               "clientRole": self.client_role, "containerId": self.container_id}
        if self.description:
            rep["description"] = self.description
        return rep


@dataclass
class Client:
    id: str
    client_id: str
    secret: str | None
    public: bool = False
    service_account: bool = False
    admin: bool = False
    roles: dict[str, Role] = field(default_factory=dict)

    def representation(self) -> dict[str, Any]:
        return {"id": self.id, "clientId": self.client_id, "enabled": True,
                "publicClient": self.public, "serviceAccountsEnabled": self.service_account,
                "protocol": "openid-connect", "clientAuthenticatorType": "client-secret"}


@dataclass
class User:
    id: str
    username: str
    created: int
    enabled: bool = True
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_verified: bool = False
    attributes: dict[str, list[str]] = field(default_factory=dict)
    required_actions: list[str] = field(default_factory=list)
    password: str | None = None
    admin: bool = False
    groups: set[str] = field(default_factory=set)
    realm_roles: set[str] = field(default_factory=set)  # role ids
    client_roles: dict[str, set[str]] = field(default_factory=dict)  # client uuid -> role ids

    def representation(self, *, brief: bool = False) -> dict[str, Any]:
        rep: dict[str, Any] = {"id": self.id, "username": self.username}
        if self.first_name is not None:
            rep["firstName"] = self.first_name
        if self.last_name is not None:
            rep["lastName"] = self.last_name
        if self.email is not None:
            rep["email"] = self.email
        rep["emailVerified"] = self.email_verified
        rep["createdTimestamp"] = self.created
        rep["enabled"] = self.enabled
        if brief:
            return rep
        if self.attributes:
            rep["attributes"] = {k: list(v) for k, v in self.attributes.items()}
        rep.update({"totp": False, "disableableCredentialTypes": [],
                    "requiredActions": list(self.required_actions), "notBefore": 0,
                    "access": {"manageGroupMembership": True, "view": True,
                               "mapRoles": True, "impersonate": False, "manage": True}})
        return rep


@dataclass
class Group:
    id: str
    name: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def representation(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "path": f"/{self.name}",
                "subGroupCount": 0, "subGroups": [], "attributes": dict(self.attributes),
                "realmRoles": [], "clientRoles": {}}


@dataclass
class Realm:
    name: str
    id: str
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)  # by name
    clients: dict[str, Client] = field(default_factory=dict)  # by uuid
    duplicate_emails_allowed: bool = False

    def client_by_client_id(self, client_id: str) -> Client | None:
        return next((c for c in self.clients.values() if c.client_id == client_id), None)

    def user_by_username(self, username: str) -> User | None:
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username == wanted), None)


@dataclass
class Token:
    realm: str
    client_id: str
    admin: bool
    expires_at: float
    kind: str = "access"


@dataclass
class _Fault:
    status: int
    body: Any
    headers: dict[str, str]
    remaining: int
