"""HTML forms to API bodies and back: typed values from form text, and the API's own error
messages placed next to the fields they name."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tierkit.server.api.errors import problems_of
from tierkit.server.services.errors import DomainError

M = TypeVar("M", bound=BaseModel)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
_NUMERIC_TYPES = {"numeric", "metered"}


@dataclass(frozen=True, slots=True)
class Problems:
    """What was wrong with a submitted form: a sentence for the top, a message per field."""

    status: int = 200
    message: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, error: DomainError | ValidationError) -> Problems:
        status, message, details = problems_of(error)
        fields: dict[str, str] = {}
        for detail in details:
            fields.setdefault(detail.param, detail.message)
        return cls(status, message, fields)

    def inside(self, name: str) -> Problems:
        """The same problems of a list submitted as the form's field `name` (`0.value` ->
        `rules.0.value`)."""
        return Problems(
            self.status, self.message, {f"{name}.{k}": v for k, v in self.fields.items()}
        )

    def renamed(self, names: Mapping[str, str]) -> Problems:
        """The same problems with the params' leading parts renamed (`entitlements.0` ->
        `entitlements.seats`, where the form names its rows otherwise than the body's list)."""
        fields = {}
        for param, message in self.fields.items():
            head, rest = param, ""
            parts = param.split(".")
            if len(parts) >= 2:
                head, rest = ".".join(parts[:2]), param[len(".".join(parts[:2])) :]
            fields[names.get(head, head) + rest] = message
        return Problems(self.status, self.message, fields)

    def __bool__(self) -> bool:
        return bool(self.message)

    def for_field(self, name: str) -> str | None:
        """The message for the field `name` or for anything inside it (`options.1.key`)."""
        if name in self.fields:
            return self.fields[name]
        inside = [message for param, message in self.fields.items() if param.startswith(name + ".")]
        return inside[0] if inside else None


def validated(model: type[M], body: Mapping[str, Any]) -> M:
    """The body as the API would read it (a `ValidationError` otherwise)."""
    return model.model_validate(dict(body))


def text(form: Mapping[str, Any], name: str) -> str | None:
    """A text field's value with its whitespace trimmed; None when empty or absent."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def flag(form: Mapping[str, Any], name: str) -> bool:
    """A checkbox: sent (any value but "false") when checked."""
    value = form.get(name)
    return isinstance(value, str) and value not in {"", "false", "off"}


def number(value: str | None) -> int | float | str | None:
    """Form text as a number when it reads as one; otherwise the text itself, so the API's
    validation names the field and says what it expects."""
    if value is None:
        return None
    cleaned = value.replace("_", "").replace(",", "")
    if not _NUMBER.fullmatch(cleaned):
        return value
    parsed = float(cleaned)
    return int(parsed) if parsed.is_integer() and abs(parsed) < 2**63 else parsed


def typed_value(feature_type: str | None, value: str | None) -> Any:
    """A feature value from form text, typed as the feature's type says."""
    if value is None:
        return None
    if feature_type == "boolean":
        lowered = value.lower()
        if lowered in {"true", "on", "yes", "1"}:
            return True
        if lowered in {"false", "off", "no", "0"}:
            return False
        return value
    if feature_type in _NUMERIC_TYPES:
        return number(value)
    return value


def timestamp(value: str | None) -> str | None:
    """A `datetime-local` input's text (no offset: the console's times are UTC) as RFC 3339."""
    if value is None:
        return None
    if _LOCAL_TIME.fullmatch(value):
        return value + (":00Z" if value.count(":") == 1 else "Z")
    return value


def parse_options(value: str | None) -> list[dict[str, str]] | None:
    """Enum options, one a line: `key: Name` (or a bare key, named after itself)."""
    if value is None:
        return None
    options = []
    for line in value.splitlines():
        if not line.strip():
            continue
        key, _, name = line.partition(":")
        key = key.strip()
        options.append({"key": key, "name": name.strip() or key.replace("_", " ").title()})
    return options


def show_options(options: Any) -> str:
    if not options:
        return ""
    return "\n".join(f"{option.key}: {option.name}" for option in options)


def show_value(value: Any) -> str:
    """A value as a form field shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
