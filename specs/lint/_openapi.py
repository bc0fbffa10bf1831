"""Lint one OpenAPI document: structure, references, operations, schemas, examples.

Structure is openapi-spec-validator's job. Around it this module adds what it misses or
reports without a location: dangling references anywhere, missing or duplicate
operationIds, schemas that describe nothing, responses without a named example, and
examples that break their own schema -- each with the JSON pointer of the offending spot.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema.exceptions import ValidationError, best_match
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
from openapi_spec_validator.validation import keywords
from referencing.exceptions import Unresolvable

from ecom_harness.specs._diagnostics import join_pointer, pointer_from_path
from ecom_harness.specs._documents import Document
from ecom_harness.specs._operations import HTTP_METHODS, iter_operations
from ecom_harness.specs._pointers import PointerError, iter_objects, resolve_pointer
from ecom_harness.specs._schemas import SchemaSet

from ._common import check_refs, check_schema_compiles

__all__ = ["lint_openapi"]

_LOWER_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# openapi-spec-validator's semantic errors carry no path, only prose naming it.
_OPERATION_IN_PROSE = re.compile(r"for '(?P<method>\w+)' (?:operation )?in '(?P<path>[^']+)'")
_OBJECT_SHAPE_KEYS = frozenset(
    {
        "properties",
        "patternProperties",
        "additionalProperties",
        "unevaluatedProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "$ref",
        "propertyNames",
        "if",
        "const",
        "enum",
    }
)


def lint_openapi(doc: Document) -> None:
    """Append every problem of an OpenAPI document to ``doc.diagnostics``."""
    version = str(doc.data.get("openapi", ""))
    if not re.match(r"^3\.[01]\.\d+$", version):
        doc.problem(
            "/openapi",
            f"unsupported OpenAPI version '{version}' (3.0.x or 3.1.x)",
            "openapi-version",
        )
        return
    refs_ok = check_refs(doc)
    _check_structure(doc, version, refs_ok)
    _check_operations(doc)
    _check_object_schemas(doc)
    _check_named_examples(doc)
    if refs_ok:
        _check_schemas_and_examples(doc, SchemaSet(doc.data, openapi30=version.startswith("3.0")))


def _shape_problems(doc: Document) -> bool:
    """The containers openapi-spec-validator walks without checking; True when sound."""
    sound = True
    for key in ("paths", "components", "info"):
        if key in doc.data and not isinstance(doc.data[key], dict):
            doc.problem(
                f"/{key}",
                f"'{key}' must be a mapping, found {type(doc.data[key]).__name__}",
                "openapi",
            )
            sound = False
    for path, item in (doc.data.get("paths") or {}).items() if sound else ():
        pointer = join_pointer("/paths", path)
        if not isinstance(item, dict):
            doc.problem(
                pointer, f"a path item must be a mapping, found {type(item).__name__}", "openapi"
            )
            sound = False
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if method in item and not isinstance(operation, dict):
                doc.problem(
                    join_pointer(pointer, method),
                    f"an operation must be a mapping, found {type(operation).__name__}",
                    "openapi",
                )
                sound = False
            elif (
                isinstance(operation, dict)
                and "responses" in operation
                and not isinstance(operation["responses"], dict)
            ):
                doc.problem(
                    join_pointer(pointer, method, "responses"),
                    "'responses' must be a mapping of status codes",
                    "openapi",
                )
                sound = False
    return sound


class _Schema30(keywords.OpenAPIV30SchemaValidator):
    """openapi-spec-validator's schema keyword without its meta-validation of each schema.

    That meta-validation runs the pure-Python ``jsonschema`` over every schema object (75%
    of the validator's time); :class:`SchemaSet` compiles every schema with jsonschema-rs,
    which checks it against its meta-schema anyway, and reports a broken one with its
    pointer (``schema-invalid``). Everything else the keyword checks still runs.
    """

    def _validate_schema_meta(self, schema: Any, schema_value: Any) -> None:
        return None


class _Schema31(keywords.OpenAPIV31SchemaValidator):
    """See :class:`_Schema30`."""

    def _validate_schema_meta(self, schema: Any, schema_value: Any) -> None:
        return None


class _Spec30(OpenAPIV30SpecValidator):
    # the library declares a plain dict; RUF012's worry (shared mutable state) does not
    # apply to a table nobody mutates
    keyword_validators = {  # noqa: RUF012
        **OpenAPIV30SpecValidator.keyword_validators,
        "schema": _Schema30,
    }


class _Spec31(OpenAPIV31SpecValidator):
    # the library declares a plain dict; RUF012's worry (shared mutable state) does not
    # apply to a table nobody mutates
    keyword_validators = {  # noqa: RUF012
        **OpenAPIV31SpecValidator.keyword_validators,
        "schema": _Schema31,
    }


def _check_structure(doc: Document, version: str, refs_ok: bool) -> None:
    if not _shape_problems(doc):
        return  # openapi-spec-validator would crash on these shapes
    validator_cls = _Spec30 if version.startswith("3.0") else _Spec31
    try:
        for error in validator_cls(doc.data).iter_errors():
            _report_validator_error(doc, error)
    except Unresolvable:
        if refs_ok:  # a reference form we accept but the validator cannot follow
            doc.problem("", "openapi-spec-validator could not resolve a $ref", "openapi")
    except RecursionError:
        doc.problem("", "the document nests too deeply (recursive $ref?)", "openapi")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        doc.problem(
            "",
            f"openapi-spec-validator could not walk the document "
            f"({type(exc).__name__}: {exc}); fix the problems reported above",
            "openapi",
        )


def _report_validator_error(doc: Document, error: Any) -> None:
    name = type(error).__name__
    if name == "DuplicateOperationIDError":
        return  # reported with both locations by _check_operations
    if isinstance(error, ValidationError):
        if error.context:
            error = best_match(error.context)
        path = list(error.absolute_path)
        if path:
            pointer = pointer_from_path(path)
            if not _is_document_path(doc, pointer, error.instance):
                return  # relative to a nested schema: _check_schemas_and_examples reports it
            doc.problem(pointer, error.message.splitlines()[0], "openapi")
            return
    message = str(error).splitlines()[0]
    where = _OPERATION_IN_PROSE.search(message)
    pointer = join_pointer("/paths", where["path"], where["method"]) if where else ""
    doc.problem(pointer, message, "openapi")


def _is_document_path(doc: Document, pointer: str, instance: Any) -> bool:
    """Whether a validator error's path starts at the document root. Structural errors
    do (the jsonschema-rs backend reports the whole document as their instance, the
    python one the node itself); schema meta-errors carry a path inside the schema."""
    if instance is doc.data:
        return True
    try:
        return bool(resolve_pointer(doc.data, pointer) == instance)
    except PointerError:
        return False


def _check_operations(doc: Document) -> None:
    first_seen: dict[str, str] = {}
    for pointer, method, path, operation in iter_operations(doc.data):
        operation_id = operation.get("operationId")
        if not isinstance(operation_id, str) or not operation_id:
            doc.problem(pointer, f"{method.upper()} {path} has no operationId", "operation-id")
            continue
        if not _LOWER_CAMEL.match(operation_id):
            doc.problem(
                join_pointer(pointer, "operationId"),
                f"operationId '{operation_id}' is not lowerCamelCase",
                "operation-id-case",
            )
        if operation_id in first_seen:
            doc.problem(
                join_pointer(pointer, "operationId"),
                f"duplicate operationId '{operation_id}' (first used at "
                f"{first_seen[operation_id]})",
                "operation-id-duplicate",
            )
        else:
            first_seen[operation_id] = pointer


def _check_object_schemas(doc: Document) -> None:
    for pointer, node in iter_objects(doc.data):
        kind = node.get("type")
        is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
        if not is_object:
            continue
        if not _OBJECT_SHAPE_KEYS & node.keys():
            doc.problem(
                pointer,
                "object schema describes no fields (add properties, or "
                "additionalProperties for a map)",
                "schema-bare-object",
            )
        properties = node.get("properties")
        required = node.get("required")
        if (
            node.get("additionalProperties") is False
            and isinstance(properties, dict)
            and isinstance(required, list)
        ):
            for name in required:
                if name not in properties:
                    doc.problem(
                        join_pointer(pointer, "required"),
                        f"required property '{name}' is not among the properties and "
                        "additionalProperties is false: no instance can be valid",
                        "schema-required-unknown",
                    )


def _response_objects(doc: Document) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for pointer, _method, _path, operation in iter_operations(doc.data):
        responses = operation.get("responses")
        if isinstance(responses, dict):
            found += [
                (join_pointer(pointer, "responses", code), r)
                for code, r in responses.items()
                if isinstance(r, dict) and "$ref" not in r
            ]
    components = doc.data.get("components")
    shared = components.get("responses") if isinstance(components, dict) else None
    if isinstance(shared, dict):
        found += [
            (join_pointer("/components/responses", name), r)
            for name, r in shared.items()
            if isinstance(r, dict) and "$ref" not in r
        ]
    return found


def _check_named_examples(doc: Document) -> None:
    for pointer, response in _response_objects(doc):
        content = response.get("content")
        if not isinstance(content, dict):
            continue
        for media, media_object in content.items():
            if not isinstance(media_object, dict) or "schema" not in media_object:
                continue
            examples = media_object.get("examples")
            if not isinstance(examples, dict) or not examples:
                doc.problem(
                    join_pointer(pointer, "content", media),
                    "response has no named example (add an 'examples' map)",
                    "example-missing",
                )


def _check_schemas_and_examples(doc: Document, schemas: SchemaSet) -> None:
    """Compile every schema and check every example against the schema beside it."""
    components = doc.data.get("components")
    named = components.get("schemas") if isinstance(components, dict) else None
    if isinstance(named, dict):
        for name in named:
            check_schema_compiles(doc, schemas, join_pointer("/components/schemas", name))
    for pointer, node in iter_objects(doc.data):
        if not isinstance(node.get("schema"), dict) or pointer.startswith("/components/schemas"):
            continue
        schema_pointer = join_pointer(pointer, "schema")
        if not check_schema_compiles(doc, schemas, schema_pointer):
            continue
        for example_pointer, value in _examples_of(doc, node, pointer):
            for violation in schemas.violations(schema_pointer, value):
                doc.problem(
                    example_pointer + violation.pointer,
                    f"example breaks its schema: {violation.message}",
                    "example-invalid",
                )


def _examples_of(doc: Document, node: dict[str, Any], pointer: str) -> list[tuple[str, Any]]:
    """The example values beside a schema, each with the pointer of the value itself."""
    found = []
    if "example" in node:
        found.append((join_pointer(pointer, "example"), node["example"]))
    examples = node.get("examples")
    if isinstance(examples, dict):
        for name, entry in examples.items():
            where, example = join_pointer(pointer, "examples", name), entry
            if isinstance(entry, dict) and isinstance(entry.get("$ref"), str):
                where = entry["$ref"].lstrip("#")  # a shared example: report it in place
                try:
                    example = resolve_pointer(doc.data, where)
                except PointerError:
                    continue  # reported by check_refs
            if isinstance(example, dict) and "value" in example:
                found.append((join_pointer(where, "value"), example["value"]))
    return found
