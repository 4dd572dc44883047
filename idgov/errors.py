"""Domain errors. They carry no HTTP codes: ``idgov.web.problems`` maps them to statuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DomainError(Exception):
    """Base of every error the service raises on purpose."""

    title = "Domain error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    """An object named by id does not exist (or the caller may not know it does)."""

    title = "Not found"


@dataclass(frozen=True)
class FieldError:
    """One invalid field: a dotted path and what is wrong with it."""

    field: str
    message: str


class InvalidInput(DomainError):
    """Input that is well-formed but refers to something missing or breaks a rule of the data."""

    title = "Invalid input"

    def __init__(self, detail: str, errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.errors = errors or []


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a forbidden transition)."""

    title = "Conflict"


class CycleError(InvalidInput):
    """Adding an inclusion would make the role hierarchy cyclic."""

    title = "Role inclusion cycle"

    def __init__(self, cycle: list[str]) -> None:
        path = " -> ".join(cycle)
        super().__init__(
            f"including this role would create a cycle: {path}",
            errors=[FieldError("role_id", f"cycle: {path}")],
            cycle=cycle,
        )
        self.cycle = cycle


class InUse(Conflict):
    """Deleting an object that active records still depend on."""

    title = "Object in use"


class Unauthenticated(DomainError):
    """No valid credentials were presented."""

    title = "Authentication required"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    title = "Forbidden"


@dataclass
class ErrorList:
    """Collects field errors so a validator can report all of them at once."""

    items: list[FieldError] = field(default_factory=list)

    def add(self, field_name: str, message: str) -> None:
        self.items.append(FieldError(field_name, message))

    def raise_if_any(self, detail: str = "the input is invalid") -> None:
        if self.items:
            raise InvalidInput(detail, errors=list(self.items))
