"""Lint one OpenAPI document: structure, references, operations, schemas, examples.

Structure is openapi-spec-validator's job. Around it this module adds what it misses or
reports without a location: dangling references anywhere, missing or duplicate
operationIds, schemas that describe nothing, responses without a named example, and
examples that break their own schema -- each with the JSON pointer of the offending spot.
"""

from __future__ import annotations

import re
from typing import Any

from ecom_harness.specs._diagnostics import join_pointer
from ecom_harness.specs._documents import Document
from ecom_harness.specs._operations import iter_operations
from ecom_harness.specs._pointers import PointerError, iter_objects, resolve_pointer
from ecom_harness.specs._schemas import SchemaSet

from ._common import REF_RULES, check_refs, check_schema_compiles
from ._structure import Structure, check_structure

__all__ = ["add_structure", "lint_openapi", "supported_openapi"]

_VERSIONS = re.compile(r"^3\.[01]\.\d+$")
_LOWER_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
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


def lint_openapi(doc: Document, *, structure: bool = True) -> None:
    """Append every problem of an OpenAPI document to ``doc.diagnostics``, those
    openapi-spec-validator finds last (``structure=False`` leaves them to the caller,
    which adds them with :func:`add_structure`: ``lint_specs`` computes them aside)."""
    version = str(doc.data.get("openapi", ""))
    if not supported_openapi(doc):
        doc.problem(
            "/openapi",
            f"unsupported OpenAPI version '{version}' (3.0.x or 3.1.x)",
            "openapi-version",
        )
        return
    refs_ok = check_refs(doc)
    _check_operations(doc)
    _check_object_schemas(doc)
    _check_named_examples(doc)
    if refs_ok:
        _check_schemas_and_examples(doc, SchemaSet(doc.data, openapi30=version.startswith("3.0")))
    if structure:
        add_structure(doc, check_structure(doc))


def add_structure(doc: Document, found: Structure) -> None:
    """Record openapi-spec-validator's findings on ``doc``, after lint's own."""
    doc.diagnostics.extend(found.diagnostics)
    refs_ok = not any(d.rule in REF_RULES for d in doc.diagnostics)
    if found.unresolvable and refs_ok:  # a reference form we accept but it cannot follow
        doc.problem("", "openapi-spec-validator could not resolve a $ref", "openapi")


def supported_openapi(doc: Document) -> bool:
    """An OpenAPI 3.0 or 3.1 document: the versions lint checks."""
    return bool(_VERSIONS.match(str(doc.data.get("openapi", ""))))


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
