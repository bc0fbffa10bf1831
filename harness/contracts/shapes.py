"""Pact matchers derived from the provider's schema: what a real provider may answer.

An answer in a pact is an example plus matching rules. The rules come from the schema
at that place, not from the example: a field with a ``pattern`` (the platform's ids)
matches by regex, a ``date-time`` by the RFC 3339 shape, integers, numbers, booleans
and free strings by type, an array by the shape of its items, and an enum as one of the
schema's values (an order is answered CONFIRMED or REJECTED by the provider's state, a
breaker open or closed by a race). So a real provider that answers other ids, times and
amounts still passes, and one that answers a value its spec does not declare fails.
"""

from __future__ import annotations

import re
from typing import Any

from pact import match

from ecom_harness.specs import PointerError, resolve_pointer

from .schema_walk import child_schema, subschemas

__all__ = ["RFC3339", "loose_request", "shaped"]

RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


def _merged(data: dict[str, Any], pointer: str | None) -> dict[str, Any]:
    """The keywords of a schema and of the schemas it combines, first one wins."""
    merged: dict[str, Any] = {}
    if pointer is None:
        return merged
    for current in subschemas(data, pointer):
        try:
            node = resolve_pointer(data, current)
        except PointerError:
            continue
        if isinstance(node, dict):
            for key, value in node.items():
                merged.setdefault(key, value)
    return merged


def shaped(  # noqa: PLR0911, PLR0912 - one branch per JSON type
    data: dict[str, Any],
    pointer: str | None,
    value: Any,
    varying: frozenset[str] = frozenset(),
    at: str = "",
) -> Any:
    """``value`` with matchers from the schema at ``pointer`` (None: no schema known).

    ``varying``: pointers whose value differs between answers of this interaction; there
    an enum value matches by type, and a field that is sometimes null (``POINTER?null``)
    is left out: the consumer cannot rely on either."""
    schema = _merged(data, pointer)
    if value is None:
        return value
    allowed = schema.get("enum") if isinstance(schema.get("enum"), list) else None
    if "const" in schema:
        allowed = [schema["const"]]
    if allowed is not None:
        # any value the schema declares: an order may be answered CONFIRMED or REJECTED
        # depending on the provider's state, a breaker open or closed depending on a race
        if isinstance(value, str) and all(isinstance(v, str) for v in allowed):
            return match.regex(value, regex="^(" + "|".join(re.escape(v) for v in allowed) + ")$")
        return value
    if isinstance(value, dict):
        return {
            key: shaped(
                data,
                child_schema(data, pointer, key) if pointer else None,
                item,
                varying,
                f"{at}/{key}",
            )
            for key, item in value.items()
            if f"{at}/{key}?null" not in varying
        }
    if isinstance(value, list):
        if not value:
            return value
        items = child_schema(data, pointer, 0) if pointer else None
        return match.each_like(shaped(data, items, value[0], varying, f"{at}/0"), min=1)
    if isinstance(value, bool):
        return match.bool(value)
    if isinstance(value, int):
        return match.int(value)
    if isinstance(value, float):
        return match.number(value)
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            return match.regex(value, regex=pattern)
        if schema.get("format") == "date-time":
            return match.regex(value, regex=RFC3339)
        return match.str(value)
    return value


def loose_request(value: Any, loose: set[str], pointer: str = "") -> Any:
    """A request body: fields in ``loose`` (they vary between requests) match by type,
    the others literally (they decide the answer)."""
    if isinstance(value, dict):
        return {k: loose_request(v, loose, f"{pointer}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [loose_request(v, loose, f"{pointer}/{i}") for i, v in enumerate(value)]
    if pointer in loose and value is not None:
        return match.type(value)
    return value
