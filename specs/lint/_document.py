"""Per-document lint: dispatch on the kind of document."""

from __future__ import annotations

from ecom_harness.specs._documents import Document, DocumentKind

from ._asyncapi import lint_asyncapi
from ._conventions import check_engine_answers, check_integer_bounds
from ._openapi import lint_openapi

__all__ = ["lint_document"]


def lint_document(doc: Document, *, structure: bool = True) -> None:
    """Check one OpenAPI or AsyncAPI document on its own; problems go to ``doc.diagnostics``
    (``structure=False``: but openapi-spec-validator's, see :func:`lint_openapi`).

    Topologies are checked by the harness, which knows the architecture rules. A validator
    that fails on input nobody foresaw must not hide the rest of the report, so such a
    failure becomes one more diagnostic.
    """
    try:
        if doc.kind is DocumentKind.OPENAPI:
            lint_openapi(doc, structure=structure)
            check_engine_answers(doc)
        elif doc.kind is DocumentKind.ASYNCAPI:
            lint_asyncapi(doc)
        if doc.kind in (DocumentKind.OPENAPI, DocumentKind.ASYNCAPI):
            check_integer_bounds(doc)
    except Exception as exc:  # noqa: BLE001 - the documented last resort, never a traceback
        doc.problem("", f"could not be checked: {type(exc).__name__}: {exc}", "internal")
