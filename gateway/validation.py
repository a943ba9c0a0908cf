"""Request validation against JSON Schema, with errors that name the field and say what is wrong.

Error codes: ``invalid_json`` (body is not JSON), ``missing_field``, ``wrong_type``,
``unknown_field`` and ``invalid_field`` (any other constraint), all with ``details.field``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator, validators
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


INT64_MAX = 2**63 - 1

# JSON Schema counts 3.0 as an integer; a client that sends it would get a float stored and echoed.
_StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def _unstorable(value: Any, path: list[str]) -> tuple[list[str], str] | None:
    """The first value MongoDB cannot store: a string that is not valid Unicode (a lone
    surrogate such as "\ud800" is valid JSON) or an integer wider than 64 bits."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "contains characters that are not valid Unicode"
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            return path, "is a number too large to store"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable(key, path) or _unstorable(item, [*path, str(key)])
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable(item, [*path, str(index)])
            if found:
                return found
    return None


class Validator:
    """A compiled schema that raises ``AppError`` describing the first problem found."""

    def __init__(self, schema: dict[str, Any], prefix: str = "") -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = _StrictValidator(schema)
        self._prefix = prefix

    def validate(self, instance: Any) -> Any:
        bad = _unstorable(instance, [self._prefix] if self._prefix else [])
        if bad is not None:
            field = ".".join(bad[0])
            raise AppError(
                "invalid_field", f"{field or 'the body'} {bad[1]}", details={"field": field}
            )
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
