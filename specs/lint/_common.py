"""Checks that apply to every kind of spec document."""

from __future__ import annotations

from ecom_harness.specs._documents import Document
from ecom_harness.specs._pointers import PointerError, iter_refs, resolve_pointer
from ecom_harness.specs._schemas import SchemaCompileError, SchemaSet

__all__ = ["check_refs", "check_schema_compiles"]


REF_RULES = ("ref-external", "ref-dangling")
"""The rules of :func:`check_refs`."""


def check_refs(doc: Document) -> bool:
    """Report every ``$ref`` that leaves the document or leads nowhere; True if all resolve."""
    clean = True
    for pointer, ref in iter_refs(doc.data):
        if not ref.startswith("#"):
            doc.problem(
                pointer,
                f"$ref '{ref}' points into another document; specs here are self-contained "
                "(move the target into this file's components)",
                "ref-external",
            )
            clean = False
            continue
        try:
            resolve_pointer(doc.data, ref)
        except PointerError as exc:
            doc.problem(pointer, f"dangling $ref '{ref}': {exc}", "ref-dangling")
            clean = False
    return clean


def check_schema_compiles(doc: Document, schemas: SchemaSet, pointer: str) -> bool:
    """Compile the schema at ``pointer``; report a broken schema (bad type, bad regex...)."""
    try:
        schemas.validator(pointer)
    except SchemaCompileError as exc:
        doc.problem(exc.pointer, f"invalid JSON Schema: {exc}", "schema-invalid")
        return False
    return True
