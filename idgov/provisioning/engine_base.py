"""What the engine's parts share: its configuration and the unit of work of a batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from connectors.base import AccountRef, AccountSpec
from connectors.errors import ConnectorError
from idgov.config import Settings
from idgov.provisioning.connections import Target

_T = TypeVar("_T")


@dataclass(frozen=True)
class EngineConfig:
    retry_base_seconds: float = 30.0
    retry_cap_seconds: float = 3600.0
    max_attempts: int = 8
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 60.0
    lease_seconds: int = 300
    batch_size: int = 100
    parallel_calls: int = 4
    grant_many_max: int = 500

    @classmethod
    def from_settings(cls, settings: Settings | None) -> EngineConfig:
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = getattr(settings, f"provisioning_{f.name}", None)
            if value is not None:
                values[f.name] = value
        return cls(**values)


def chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


IN_MAX = 500


@dataclass
class Outcome:
    result: Any = None
    error: ConnectorError | None = None
    called: bool = True  # the target was reached (or tried)


@dataclass
class Work:
    """One claimed operation, read before the call, and what the call gave."""

    operation_id: uuid.UUID
    action: str
    attempt: int
    target: Target
    ref: AccountRef | None = None
    spec: AccountSpec | None = None
    entitlement: str | None = None
    attributes: dict[str, Any] | None = None
    nothing_to_do: str | None = None
    outcome: Outcome | None = None
