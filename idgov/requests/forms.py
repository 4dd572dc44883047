"""Dynamic request forms: a request type's JSON Schema (Draft 2020-12), checked on write and
used to validate each request's form data on the server, so the web form and the API agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from idgov.errors import FieldError, InvalidInput

FORM_PREFIX = "form_data"


def check_form_schema(schema: Mapping[str, Any], *, field: str = "form_schema") -> None:
    """Raise InvalidInput (at ``field``) unless ``schema`` is a valid Draft 2020-12 schema of
    an object (form data is always a JSON object)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        message = f"not a valid JSON Schema (Draft 2020-12): {exc.message}"
        if where:
            message += f" (at {where})"
        raise InvalidInput("the form schema is invalid",
                           errors=[FieldError(field, message)]) from exc
    if schema.get("type") != "object":
        raise InvalidInput("the form schema is invalid",
                           errors=[FieldError(field, 'must describe an object ("type": "object")')])


def _path(parts: Iterable[Any]) -> str:
    return ".".join([FORM_PREFIX, *(str(p) for p in parts)])


def _field_errors(error: ValidationError) -> list[FieldError]:
    """One error per field; a missing required property is reported at the property."""
    if error.validator == "required" and isinstance(error.instance, dict):
        required: list[Any] = list(error.validator_value)  # type: ignore[arg-type]
        missing = [name for name in required
                   if name not in error.instance and repr(name) in error.message]
        return [FieldError(_path([*error.absolute_path, name]), "is required")
                for name in missing[:1]] or [FieldError(_path(error.absolute_path),
                                                        error.message)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            return [FieldError(_path([*error.absolute_path, k]), "is not a field of this form")
                    for k in extra]
    return [FieldError(_path(error.absolute_path), error.message)]


def form_errors(schema: Mapping[str, Any], data: Any) -> list[FieldError]:
    """Every way ``data`` breaks ``schema``, each at ``form_data.<path>``, in a stable order."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    found: list[FieldError] = []
    for error in validator.iter_errors(data):
        for item in _field_errors(error):
            if item not in found:
                found.append(item)
    return sorted(found, key=lambda e: (e.field, e.message))


def validate_form(schema: Mapping[str, Any], data: Any) -> None:
    """Raise InvalidInput (422) listing every invalid field of ``data``."""
    errors = form_errors(schema, data)
    if errors:
        raise InvalidInput("the form data does not match the request type's form",
                           errors=errors)
