"""The authenticated caller of one request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from idgov.auth.permissions import capabilities_of
from idgov.types import Actor


@dataclass(frozen=True)
class Caller:
    """Who is calling, which identity they are (if a person), and their service roles."""

    kind: str  # "token" or "oidc"
    name: str
    roles: frozenset[str]
    principal_id: uuid.UUID | None = None
    identity_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    capabilities: frozenset[str] = field(default=frozenset())

    @classmethod
    def build(cls, *, kind: str, name: str, roles: frozenset[str],
              principal_id: uuid.UUID | None = None, identity_id: uuid.UUID | None = None,
              token_id: uuid.UUID | None = None) -> Caller:
        return cls(kind=kind, name=name, roles=roles, principal_id=principal_id,
                   identity_id=identity_id, token_id=token_id,
                   capabilities=capabilities_of(roles))

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def actor(self) -> Actor:
        """How this caller appears in the audit trail."""
        if self.identity_id is not None:
            return Actor.for_identity(self.identity_id, self.name)
        if self.principal_id is not None:
            return Actor.for_principal(self.principal_id, self.name)
        return Actor(type=self.kind, id=None, name=self.name)
