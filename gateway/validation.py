"""Request validation against JSON Schema, with errors that name the field and say what is wrong.

Error codes: ``invalid_json`` (body is not JSON), ``missing_field``, ``wrong_type``,
``unknown_field`` and ``invalid_field`` (any other constraint), all with ``details.field``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from storage.errors import AppError

_REQUIRED = re.compile(r"^'(.+)' is a required property$")
_CODES = {
    "required": "missing_field",
    "type": "wrong_type",
    "additionalProperties": "unknown_field",
}


def _field_of(error: ValidationError, prefix: str) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        # jsonschema reports one error per missing property: "'name' is a required property".
        match = _REQUIRED.match(error.message)
        path.append(match.group(1) if match else "")
    elif error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        path.append(extra[0] if extra else "")
    return ".".join([prefix, *path]) if prefix else ".".join(path)


def _message(error: ValidationError, field: str) -> str:
    if error.validator == "required":
        return f"{field} is required"
    if error.validator == "additionalProperties":
        return f"{field} is not an accepted field"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{field or 'the body'} must be of type {expected}"
    if error.validator in {"maxLength", "minLength"}:
        return f"{field} must have {error.validator[:3]}imum length {error.validator_value}"
    if error.validator in {"maximum", "minimum"}:
        return f"{field} must be at {error.validator[:3]}imum {error.validator_value}"
    return f"{field or 'the body'}: {error.message}"


class Validator:
    """A compiled schema that raises ``AppError`` describing the first problem found."""

    def __init__(self, schema: dict[str, Any], prefix: str = "") -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = Draft202012Validator(schema)
        self._prefix = prefix

    def validate(self, instance: Any) -> Any:
        errors = sorted(self._validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if not errors:
            return instance
        problems = []
        for error in errors:
            field = _field_of(error, self._prefix)
            problems.append(
                {
                    "field": field,
                    "code": _CODES.get(error.validator, "invalid_field"),
                    "message": _message(error, field),
                }
            )
        first = problems[0]
        raise AppError(
            first["code"], first["message"], details={"field": first["field"], "problems": problems}
        )


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AppError("invalid_json", "the request body is not valid JSON") from None
