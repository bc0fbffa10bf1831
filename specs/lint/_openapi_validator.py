"""openapi-spec-validator run over one OpenAPI document, its findings turned into
diagnostics with JSON pointers.

The library checks the structure (the OpenAPI meta-schema and its semantic rules); this
module guards it from shapes it would crash on, skips its per-schema meta-validation
(jsonschema-rs compiles every schema anyway), and locates what it reports. Imported only
where the check runs (see :mod:`._structure`): the library's import is a large part of
lint's time.
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
from ecom_harness.specs._operations import HTTP_METHODS
from ecom_harness.specs._pointers import PointerError, resolve_pointer

from ._structure import Structure

__all__ = ["validate_structure"]

# openapi-spec-validator's semantic errors carry no path, only prose naming it.
_OPERATION_IN_PROSE = re.compile(r"for '(?P<method>\w+)' (?:operation )?in '(?P<path>[^']+)'")


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


def validate_structure(doc: Document) -> Structure:
    """openapi-spec-validator's findings on ``doc`` (an OpenAPI 3.0 or 3.1 document),
    each with the pointer of its spot where the library gives one. ``doc`` itself is left
    as it was: the findings are returned, so they can cross a process boundary."""
    scratch = Document(doc.path, doc.display, doc.kind, doc.data)
    unresolvable = _check(scratch)
    return Structure(tuple(scratch.diagnostics), unresolvable)


def _check(doc: Document) -> bool:
    """Record the validator's findings on ``doc``; True when it met an unresolvable $ref."""
    if not _shape_problems(doc):
        return False  # openapi-spec-validator would crash on these shapes
    version = str(doc.data.get("openapi", ""))
    validator_cls = _Spec30 if version.startswith("3.0") else _Spec31
    try:
        for error in validator_cls(doc.data).iter_errors():
            _report_validator_error(doc, error)
    except Unresolvable:
        return True
    except RecursionError:
        doc.problem("", "the document nests too deeply (recursive $ref?)", "openapi")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        doc.problem(
            "",
            f"openapi-spec-validator could not walk the document "
            f"({type(exc).__name__}: {exc}); fix the problems reported above",
            "openapi",
        )
    return False


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
