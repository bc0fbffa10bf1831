"""Lint rules from specs/CONVENTIONS.md that make a spec precise enough to implement from.

- ``integer-bounds``: every integer schema says its ``format`` (int32 or int64) and both
  bounds inside that format's range -- an implementer must know which values can come,
  and a value the validator lets through must fit the column that stores it.
- ``engine-answers``: an internal operation documents the answers given before its own
  logic runs (415 where it takes a body, 400 where the body is JSON, the validation status
  422 where it has parameters or a body, 401 where it has security); otherwise every
  client meets undocumented statuses.
- ``shared-definition``: a definition several documents copy (``Problem``, ``Amount``...)
  is identical in each, so the documents speak with one voice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from ecom_harness.specs._diagnostics import join_pointer
from ecom_harness.specs._documents import Document, DocumentKind
from ecom_harness.specs._operations import iter_operations
from ecom_harness.specs._pointers import iter_objects
from ecom_harness.specs._schemas import INTEGER_FORMAT_RANGES

__all__ = [
    "FORMAT_RANGES",
    "SHARED_DEFINITIONS",
    "VALIDATION_STATUS",
    "check_engine_answers",
    "check_integer_bounds",
    "check_shared_definitions",
]

FORMAT_RANGES = INTEGER_FORMAT_RANGES
VALIDATION_STATUS = "422"  # CONVENTIONS.md: the one status for a request the spec rejects
# Names under components.schemas that every document having them must define identically.
SHARED_DEFINITIONS = (
    "Problem",
    "ProblemError",
    "Amount",
    "Currency",
    "Timestamp",
    "Sku",
    "OrderId",
    "UserId",
    "PaymentId",
    "ReservationId",
    "ShipmentId",
    "EventId",
    "PaymentMethodId",
    "Email",
    "Phone",
    "Contact",
    "Address",
    "OrderStatus",
    "FailureReason",
    "RejectionReason",
    "CancellationReason",
    "ReleaseReason",
)
_JSON_BODY_SUFFIXES = ("/json", "+json")


def _is_integer(node: dict[Any, Any]) -> bool:
    kind = node.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def check_integer_bounds(doc: Document) -> None:
    """Every integer schema: a known ``format`` and both bounds, inside its range."""
    for pointer, node in iter_objects(doc.data):
        if not _is_integer(node) or "const" in node or "enum" in node:
            continue
        fmt = node.get("format")
        if fmt not in FORMAT_RANGES:
            doc.problem(
                pointer,
                f"integer without format int32 or int64 (found {fmt!r}): say which values fit",
                "integer-bounds",
            )
            continue
        low, high = FORMAT_RANGES[fmt]
        for bound, default in (("minimum", low), ("maximum", high)):
            value = node.get(bound)
            if not isinstance(value, int | float) or isinstance(value, bool):
                doc.problem(
                    pointer,
                    f"integer without a {bound} (the {fmt} {bound} is {default})",
                    "integer-bounds",
                )
            elif not low <= value <= high:
                doc.problem(
                    join_pointer(pointer, bound),
                    f"{bound} {value} is outside the range of {fmt} ({low}..{high})",
                    "integer-bounds",
                )


def _is_internal(doc: Document) -> bool:
    """External providers keep their real wire format; they are under ``external/``."""
    return "external" not in doc.path.parts


def _resolved(doc: Document, node: Any) -> Any:
    """A local ``$ref`` followed (once is enough for parameters and request bodies)."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target: Any = doc.data
        for token in node["$ref"].lstrip("#/").split("/"):
            target = target.get(token) if isinstance(target, dict) else None
        return target
    return node


def check_engine_answers(doc: Document) -> None:
    """Each internal operation documents the statuses the engine answers for it."""
    if doc.kind is not DocumentKind.OPENAPI or not _is_internal(doc):
        return
    root_security = doc.data.get("security")
    paths = doc.data.get("paths")
    for pointer, _method, path, operation in iter_operations(doc.data):
        responses = operation.get("responses")
        if not isinstance(responses, dict):
            continue
        item = paths.get(path) if isinstance(paths, dict) else None
        shared_params = item.get("parameters") if isinstance(item, dict) else None
        has_params = bool(operation.get("parameters") or shared_params)
        body = _resolved(doc, operation.get("requestBody"))
        content = body.get("content") if isinstance(body, dict) else None
        media = list(content) if isinstance(content, dict) else []
        security = operation.get("security", root_security)
        needed: list[tuple[str, str]] = []
        if media:
            needed.append(("415", "it takes a request body"))
        if any(str(m).endswith(_JSON_BODY_SUFFIXES) for m in media):
            needed.append(("400", "it takes a JSON body, which may not parse"))
        if media or has_params:
            needed.append((VALIDATION_STATUS, "it has parameters or a body the spec constrains"))
        if isinstance(security, list) and any(security):
            needed.append(("401", "it requires credentials"))
        for status, why in needed:
            if status not in responses:
                doc.problem(
                    join_pointer(pointer, "responses"),
                    f"does not document {status}, which the engine answers because {why}",
                    "engine-answers",
                )


def check_shared_definitions(documents: Iterable[Document]) -> None:
    """Every copy of a shared definition equals the one most documents agree on."""
    copies: dict[str, list[tuple[Document, bytes]]] = {}
    for doc in documents:
        components = doc.data.get("components")
        schemas = components.get("schemas") if isinstance(components, dict) else None
        if not isinstance(schemas, dict):
            continue
        for name in SHARED_DEFINITIONS:
            if name in schemas:
                form = orjson.dumps(schemas[name], option=orjson.OPT_SORT_KEYS)
                copies.setdefault(name, []).append((doc, form))
    for name, found in copies.items():
        counts = Counter(form for _doc, form in found)
        if len(counts) == 1:
            continue
        # The most common form wins; a tie goes to the form of the first document by path.
        ordered = sorted(found, key=lambda entry: entry[0].display)
        agreed = max(counts, key=lambda form: (counts[form], -_first(ordered, form)))
        witness = next(doc.display for doc, form in ordered if form == agreed)
        for doc, form in ordered:
            if form != agreed:
                doc.problem(
                    join_pointer("/components/schemas", name),
                    f"shared definition '{name}' differs from the copy in {witness} "
                    f"({counts[agreed]} of {len(found)} documents agree); make it identical",
                    "shared-definition",
                )


def _first(ordered: list[tuple[Document, bytes]], form: bytes) -> int:
    return next(index for index, (_doc, f) in enumerate(ordered) if f == form)
