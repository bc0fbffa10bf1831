"""Walking a spec's schemas alongside a JSON instance, to say *where in the spec* a finding is.

A validator says where in the instance a body breaks its schema; a contract finding must
also name the spec's JSON pointer (``/components/schemas/Order/properties/status``), so
a provider team sees which line of its spec broke which consumer. These helpers follow
``$ref`` and ``allOf``/``oneOf``/``anyOf`` as the validator does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ecom_harness.specs import PointerError, join_pointer, resolve_pointer

__all__ = [
    "child_schema",
    "follow_refs",
    "iter_relied_fields",
    "known_properties",
    "schema_at_path",
    "subschemas",
]

_COMBINERS = ("allOf", "oneOf", "anyOf")


def follow_refs(data: dict[str, Any], pointer: str) -> str:
    """The pointer of the schema a ``$ref`` chain starting at ``pointer`` ends at."""
    for _ in range(32):
        node = _node(data, pointer)
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not (isinstance(ref, str) and ref.startswith("#")):
            return pointer
        pointer = ref[1:]
    return pointer


def subschemas(data: dict[str, Any], pointer: str) -> list[str]:
    """The schema (refs followed) and every schema it combines, depth first."""
    found: list[str] = []
    pending = [follow_refs(data, pointer)]
    while pending and len(found) < 64:
        current = pending.pop(0)
        if current in found:
            continue
        found.append(current)
        node = _node(data, current)
        if not isinstance(node, dict):
            continue
        for key in _COMBINERS:
            parts = node.get(key)
            if isinstance(parts, list):
                pending.extend(
                    follow_refs(data, join_pointer(current, key, i)) for i in range(len(parts))
                )
    return found


def known_properties(data: dict[str, Any], pointer: str) -> tuple[set[str], str | None]:
    """``(declared property names, pointer of an additionalProperties schema or None)``."""
    names: set[str] = set()
    extra: str | None = None
    for current in subschemas(data, pointer):
        node = _node(data, current)
        if not isinstance(node, dict):
            continue
        properties = node.get("properties")
        if isinstance(properties, dict):
            names.update(str(k) for k in properties)
        if isinstance(node.get("additionalProperties"), dict):
            extra = join_pointer(current, "additionalProperties")
    return names, extra


def child_schema(data: dict[str, Any], pointer: str, token: str | int) -> str | None:
    """The schema of one property (or array item) of the instance the schema describes."""
    for current in subschemas(data, pointer):
        node = _node(data, current)
        if not isinstance(node, dict):
            continue
        if isinstance(token, int) or token.isdigit():
            if isinstance(node.get("items"), dict):
                return join_pointer(current, "items")
            continue
        properties = node.get("properties")
        if isinstance(properties, dict) and token in properties:
            return join_pointer(current, "properties", token)
    if not isinstance(token, int):
        _, extra = known_properties(data, pointer)
        return extra
    return None


def schema_at_path(data: dict[str, Any], pointer: str, path: list[str | int]) -> str | None:
    """The schema describing the value at ``path`` of an instance of the schema at ``pointer``."""
    current: str | None = pointer
    for token in path:
        if current is None:
            return None
        current = child_schema(data, current, token)
    return current


def iter_relied_fields(
    data: dict[str, Any], pointer: str, value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """Every field of ``value`` its schema does not declare: ``(instance path, field,
    pointer of the object schema)``. These are the fields a consumer relies on that the
    provider's spec no longer has (removed or renamed)."""
    if isinstance(value, dict):
        names, extra = known_properties(data, pointer)
        if not names and extra is None:
            return  # a free-form object: nothing declared, nothing to lose
        target = follow_refs(data, pointer)
        for key, item in value.items():
            if key in names:
                child = child_schema(data, pointer, key)
                if child is not None:
                    yield from iter_relied_fields(data, child, item, (*path, key))
            elif extra is not None:
                yield from iter_relied_fields(data, extra, item, (*path, key))
            else:
                yield (*path, key), str(key), target
    elif isinstance(value, list):
        child = child_schema(data, pointer, 0)
        if child is not None:
            for index, item in enumerate(value):
                yield from iter_relied_fields(data, child, item, (*path, index))


def _node(data: dict[str, Any], pointer: str) -> Any:
    try:
        return resolve_pointer(data, pointer)
    except PointerError:
        return None
