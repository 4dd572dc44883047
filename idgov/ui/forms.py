"""Dynamic forms: a request type's JSON Schema turned into form fields, and posted text
turned back into JSON values. Pure: no database, no web.

The server validates the result with the same JSON Schema as the API (``validate_form``), so
the form only helps: it never decides what is valid. Inputs are named by the path the
server reports errors at (``form_data.<property>``), so every error lands at its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idgov.errors import FieldError
from idgov.requests.forms import FORM_PREFIX

_LONG_TEXT = 200  # a string allowed longer than this gets a text area


@dataclass(frozen=True)
class FormField:
    """One input of a dynamic form."""

    name: str  # form_data.<property>
    label: str
    kind: str  # text, textarea, number, checkbox, select, date, datetime-local, email
    required: bool
    hint: str | None
    options: tuple[tuple[str, str], ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()


def _kind(prop: Mapping[str, Any]) -> str:
    kind = prop.get("type")
    if "enum" in prop:
        return "select"
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    fmt = prop.get("format")
    if fmt == "date":
        return "date"
    if fmt == "date-time":
        return "datetime-local"
    if fmt == "email":
        return "email"
    if int(prop.get("maxLength", _LONG_TEXT + 1)) > _LONG_TEXT:
        return "textarea"
    return "text"


def _attrs(prop: Mapping[str, Any], kind: str) -> tuple[tuple[str, str], ...]:
    """Hints for the browser; the server checks again. No ``required``/``pattern``
    attributes: the browser would block the post and the server's message would not show."""
    found: list[tuple[str, str]] = []
    if kind == "number":
        found.append(("step", "1" if prop.get("type") == "integer" else "any"))
        found += [(html, str(prop[key])) for key, html in (("minimum", "min"),
                                                          ("maximum", "max")) if key in prop]
    if kind in ("text", "textarea") and "maxLength" in prop:
        found.append(("maxlength", str(prop["maxLength"])))
    return tuple(found)


def fields_of(schema: Mapping[str, Any]) -> list[FormField]:
    """The inputs of the form of ``schema`` (an object schema), in its property order."""
    required = set(schema.get("required") or [])
    fields = []
    for key, raw in (schema.get("properties") or {}).items():
        prop: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        kind = _kind(prop)
        hint = prop.get("description")
        if "pattern" in prop and not hint:
            hint = f"Format: {prop['pattern']}"
        options = tuple((str(v), str(v)) for v in prop.get("enum") or ())
        label = str(prop.get("title") or key.replace("_", " ").capitalize())
        fields.append(FormField(name=f"{FORM_PREFIX}.{key}", label=label, kind=kind,
                                required=key in required, hint=hint,
                                options=options, attrs=_attrs(prop, kind)))
    return fields


def _coerce(prop: Mapping[str, Any], text: str) -> Any:
    kind = prop.get("type")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if kind == "boolean":
        return text.lower() in ("true", "on", "1", "yes")
    return text


def form_data_from(schema: Mapping[str, Any], posted: Mapping[str, str]
                   ) -> tuple[dict[str, Any], list[FieldError]]:
    """The JSON form data from the posted ``form_data.<property>`` texts; empty inputs are
    left out (so "required" is the schema's to report). Texts that cannot be the property's
    type are returned as field errors."""
    data: dict[str, Any] = {}
    problems: list[FieldError] = []
    for key, raw in (schema.get("properties") or {}).items():
        prop: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        name = f"{FORM_PREFIX}.{key}"
        text = (posted.get(name) or "").strip()
        if not text:
            continue
        try:
            data[key] = _coerce(prop, text)
        except ValueError as exc:
            problems.append(FieldError(name, str(exc)))
    return data, problems


def posted_values(posted: Mapping[str, str]) -> dict[str, str]:
    """What the person typed, to show again after an error (keys as the inputs' names)."""
    return {k: str(v) for k, v in posted.items() if k != "csrf_token"}
