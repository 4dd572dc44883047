"""Small value types shared by every module."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who did something, as the audit trail records it."""

    type: str  # "identity", "service_principal", "system"
    id: str | None
    name: str | None

    @classmethod
    def system(cls, name: str = "idgov") -> Actor:
        """The service itself (a CLI command, a scheduled task)."""
        return cls(type="system", id=None, name=name)

    @classmethod
    def for_principal(cls, principal_id: uuid.UUID, name: str) -> Actor:
        return cls(type="service_principal", id=str(principal_id), name=name)

    @classmethod
    def for_identity(cls, identity_id: uuid.UUID, name: str) -> Actor:
        return cls(type="identity", id=str(identity_id), name=name)

    @property
    def label(self) -> str:
        """A readable one-line name, for columns such as ``granted_by``."""
        return f"{self.type}:{self.name or self.id or '-'}"
