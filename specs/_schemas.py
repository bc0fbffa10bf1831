"""Compiled JSON-Schema validators for schemas that live inside a spec document.

The whole document is registered once as a resource, and a validator for the schema at
any pointer is ``{"$ref": "<doc>#<pointer>"}`` compiled by jsonschema-rs, so local
``$ref``s inside the schema resolve as they do in the spec. Validators are compiled once
per pointer and cached: compiling per request is the slow path.

OpenAPI 3.0 schemas are not JSON Schema (``nullable``, boolean ``exclusiveMinimum``);
they are translated to their 2020-12 meaning before registration. The integer formats
``int32`` and ``int64`` are ranges that JSON Schema validators do not enforce (a format
is an annotation, and jsonschema-rs checks formats of strings only): they become the
``minimum``/``maximum`` they imply wherever the schema sets no tighter bound, so a value
that fits no 32- or 64-bit column is refused with the rest of the request's violations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jsonschema_rs
import orjson

from ._diagnostics import pointer_from_path

__all__ = ["SchemaCompileError", "SchemaSet", "Violation"]

_DOC_URI = "urn:ecom-harness:document"
# Characters a URI fragment may hold as they are (RFC 3986); `{`, `}`, `%`... are encoded.
_FRAGMENT_SAFE = "/~!$&'()*+,;=:@-._"


@dataclass(frozen=True, slots=True)
class Violation:
    """One way an instance breaks its schema: where in the instance, and why."""

    pointer: str
    message: str


class SchemaCompileError(ValueError):
    """The schema itself is broken; ``pointer`` locates the fault inside the document."""

    def __init__(self, pointer: str, message: str):
        super().__init__(message)
        self.pointer = pointer


class SchemaSet:
    """Validators for the schemas of one document, compiled on first use."""

    def __init__(self, document: dict[str, Any], *, openapi30: bool = False):
        contents = copy.deepcopy(document)
        if openapi30:
            _translate_openapi30(contents)
        _bound_integer_formats(contents)
        self._registry = jsonschema_rs.Registry([(_DOC_URI, contents)])
        self._validators: dict[str, Any] = {}

    def validator(self, pointer: str) -> Any:
        """The compiled validator of the schema at ``pointer``; raises SchemaCompileError."""
        found = self._validators.get(pointer)
        if found is None:
            try:
                found = jsonschema_rs.validator_for(
                    {"$ref": f"{_DOC_URI}#{quote(pointer, safe=_FRAGMENT_SAFE)}"},
                    registry=self._registry,
                    validate_formats=True,
                )
            except jsonschema_rs.ValidationError as exc:  # the schema breaks its meta-schema
                raise SchemaCompileError(
                    pointer_from_path(exc.instance_path) or pointer, exc.message
                ) from None
            except (jsonschema_rs.ReferencingError, ValueError) as exc:
                raise SchemaCompileError(pointer, str(exc).splitlines()[0]) from None
            self._validators[pointer] = found
        return found

    def violations(self, pointer: str, instance: Any) -> list[Violation]:
        """Every way ``instance`` breaks the schema at ``pointer`` (empty when valid)."""
        validator = self.validator(pointer)
        if validator.is_valid(instance):  # the common case: no error objects to build
            return []
        return [
            Violation(pointer_from_path(err.instance_path), _message(err))
            for err in validator.iter_errors(instance)
        ]


def _message(error: Any) -> str:
    """jsonschema-rs's message, except that an enum error names every allowed value
    (it says "or 2 other candidates" past the second)."""
    options = getattr(error.kind, "options", None)
    if type(error.kind).__name__ == "Enum" and isinstance(options, list):
        allowed = ", ".join(orjson.dumps(option).decode() for option in options)
        return f"{orjson.dumps(error.instance).decode()} is not one of {allowed}"
    return str(error.message)


_EXCLUSIVE_BOUNDS = (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum"))
INTEGER_FORMAT_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# Members whose values are data, not schemas: never rewritten.
_DATA_MEMBERS = frozenset({"example", "examples", "default", "const", "enum", "value"})


def _bound_integer_formats(node: Any) -> None:
    """Give every ``int32``/``int64`` schema the bounds of its range, in place."""
    if isinstance(node, dict):
        span = INTEGER_FORMAT_RANGES.get(node.get("format"))  # type: ignore[arg-type]
        if span is not None and "type" in node:
            low, high = span
            if not isinstance(node.get("minimum"), int | float) or node["minimum"] < low:
                node["minimum"] = low
            if not isinstance(node.get("maximum"), int | float) or node["maximum"] > high:
                node["maximum"] = high
        for key, value in node.items():
            if key not in _DATA_MEMBERS:
                _bound_integer_formats(value)
    elif isinstance(node, list):
        for item in node:
            _bound_integer_formats(item)


def _translate_openapi30(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 schema keywords to JSON Schema 2020-12, in place."""
    if isinstance(node, dict):
        if node.get("nullable") is True and "type" in node:
            kind = node["type"]
            node["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
        for bound, exclusive in _EXCLUSIVE_BOUNDS:
            if isinstance(node.get(exclusive), bool) and node.pop(exclusive) and bound in node:
                node[exclusive] = node.pop(bound)
        for value in node.values():
            _translate_openapi30(value)
    elif isinstance(node, list):
        for item in node:
            _translate_openapi30(item)
    return node
