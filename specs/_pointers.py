"""JSON pointers and references inside one document: resolving, walking, finding ``$ref``s.

openapi-spec-validator stops at the first unresolvable reference (or misses those it
never follows), so every ``$ref`` is walked here, in any position, before validation.
Example payloads are data, not spec: a ``$ref`` key inside them is not a reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._diagnostics import join_pointer

__all__ = ["PointerError", "iter_objects", "iter_refs", "resolve_pointer", "unescape_token"]

# Keys whose values are literal data (JSON Schema and OpenAPI/AsyncAPI example slots).
_DATA_KEYS = frozenset({"example", "default", "const", "enum"})


class PointerError(LookupError):
    """A JSON pointer that leads nowhere; the message says which token failed."""


def unescape_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def resolve_pointer(document: Any, pointer: str) -> Any:
    """Follow an RFC 6901 pointer (``/a/b/0``) from the document root."""
    if pointer in ("", "#"):
        return document
    if pointer.startswith("#"):
        pointer = pointer[1:]
    if not pointer.startswith("/"):
        raise PointerError(f"'{pointer}' is not a JSON pointer (it must start with '/')")
    node = document
    walked = ""
    for raw in pointer[1:].split("/"):
        token = unescape_token(raw)
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, dict) and token.isdigit() and int(token) in node:
            node = node[int(token)]  # YAML reads `200:` as an int key
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PointerError(f"{walked or '/'} has no '{token}'")
        walked += "/" + raw
    return node


def iter_refs(node: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(pointer of the object holding $ref, ref string)`` for every reference."""
    for where, obj in iter_objects(node, pointer):
        ref = obj.get("$ref")
        if isinstance(ref, str):
            yield where, ref


def iter_objects(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[Any, Any]]]:
    """Yield ``(pointer, mapping)`` for every mapping of the spec, skipping literal data.

    Example values, defaults, consts and enums are data, not spec. A list under
    ``examples`` (JSON Schema, AsyncAPI messages) is data; a map under ``examples`` holds
    OpenAPI Example Objects, which may be references but whose ``value`` is data.
    """
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            if key in _DATA_KEYS:
                continue
            child = join_pointer(pointer, key)
            if key == "examples":
                if isinstance(value, dict):
                    for name, example in value.items():
                        if isinstance(example, dict):
                            inner = {k: v for k, v in example.items() if k != "value"}
                            yield from iter_objects(inner, join_pointer(child, name))
            else:
                yield from iter_objects(value, child)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from iter_objects(item, join_pointer(pointer, index))
