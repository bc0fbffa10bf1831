"""The compiled form of an OpenAPI document: one :class:`Operation` per operationId.

Everything a request needs is worked out once here -- path regexes, how each parameter
is parsed from its string form, which schema validates what, the examples of every
response -- so serving a request only looks things up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._diagnostics import join_pointer
from ._documents import Document
from ._pointers import resolve_pointer
from ._schemas import SchemaSet

__all__ = [
    "HTTP_METHODS",
    "Api",
    "MediaBody",
    "Operation",
    "Parameter",
    "ResponseSpec",
    "coercer_for",
    "iter_operations",
    "resolve_refs",
    "schema_type",
]

Coerce = Callable[[str], Any]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def iter_operations(data: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every operation as ``(pointer, method, path, operation object)``, in file order."""
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    paths = data.get("paths")
    if not isinstance(paths, dict):
        return found
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                found.append((join_pointer("/paths", path, method), method, str(path), operation))
    return found


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path | query | header | cookie
    required: bool
    schema_pointer: str | None
    coerce: Coerce
    is_array: bool = False
    pointer: str = ""  # where violations point: /path/sku, /query/limit, /header/...


@dataclass(frozen=True, slots=True)
class MediaBody:
    """One media type of a request or response body: its schema and named examples."""

    media_type: str
    schema_pointer: str | None
    examples: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    status: str  # "200", "4XX" or "default", as in the spec
    content: dict[str, MediaBody]
    headers: dict[str, Any]


@dataclass(slots=True)
class Operation:
    operation_id: str
    method: str
    path: str
    pointer: str
    path_regex: re.Pattern[str]
    path_groups: dict[str, str]
    parameters: list[Parameter]
    body_required: bool
    body: dict[str, MediaBody]
    responses: dict[str, ResponseSpec]
    security: list[dict[str, list[str]]] = field(default_factory=list)
    # The spec's example answers by (Prefer code, Prefer example, Accept), once worked out.
    canned: dict[tuple[str | None, str | None, str | None], Any] = field(default_factory=dict)


def resolve_refs(doc: dict[str, Any], node: Any) -> Any:
    """Follow ``$ref`` chains (spec objects only, not schemas: those stay references)."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        node = resolve_pointer(doc, node["$ref"])
        seen += 1
    return node


def schema_type(doc: dict[str, Any], schema: Any) -> str | None:
    schema = resolve_refs(doc, schema)
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key) or []:
                if found := schema_type(doc, part):
                    return found
    return kind if isinstance(kind, str) else None


def coercer_for(kind: str | None) -> Coerce:
    """How a string from a path, query or header becomes the value the schema expects;
    a string that does not parse stays a string, so the schema reports it."""
    if kind == "integer":
        return lambda raw: int(raw) if re.fullmatch(r"-?\d+", raw) else raw
    if kind == "number":

        def number(raw: str) -> Any:
            try:
                return float(raw) if any(c in raw for c in ".eE") else int(raw)
            except ValueError:
                return raw

        return number
    if kind == "boolean":
        return lambda raw: {"true": True, "false": False}.get(raw, raw)
    return lambda raw: raw


def _path_regex(path: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """A regex for a path template, and which regex group holds which parameter."""
    pattern, groups = "", dict[str, str]()
    for part in re.split(r"(\{[^}/]+\})", path):
        if part.startswith("{"):
            group = f"p{len(groups)}"
            groups[group] = part[1:-1]
            pattern += f"(?P<{group}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(f"^{pattern}$"), groups


class Api:
    """A compiled OpenAPI document: operations by id, shared schema validators."""

    def __init__(self, document: Document):
        self.document = document
        data = document.data
        self.schemas = SchemaSet(data, openapi30=str(data.get("openapi", "")).startswith("3.0"))
        self.operations: dict[str, Operation] = {}
        default_security = data.get("security") or []
        for pointer, method, path, raw in iter_operations(data):
            item = resolve_refs(data, data["paths"][path])
            op_id = raw.get("operationId") or f"{method} {path}"
            path_regex, path_groups = _path_regex(path)
            self.operations[op_id] = Operation(
                operation_id=op_id,
                method=method.upper(),
                path=path,
                pointer=pointer,
                path_regex=path_regex,
                path_groups=path_groups,
                parameters=self._parameters(item, raw, pointer),
                body_required=bool(
                    resolve_refs(data, raw.get("requestBody") or {}).get("required")
                ),
                body=self._request_body(raw, pointer),
                responses=self._responses(raw, pointer),
                security=raw.get("security", default_security),
            )
        # Static segments win over templated ones: /orders/summary before /orders/{id}.
        self.routes = sorted(
            self.operations.values(), key=lambda op: (op.path.count("{"), -len(op.path))
        )
        # Paths without parameters are looked up, not matched.
        self.static_routes = {(op.method, op.path): op for op in self.routes if "{" not in op.path}
        self.templated_routes: dict[str, list[Operation]] = {}
        for op in self.routes:
            if "{" in op.path:
                self.templated_routes.setdefault(op.method, []).append(op)
        components = data.get("components")
        schemes = components.get("securitySchemes") if isinstance(components, dict) else None
        self.security_schemes: dict[str, Any] = schemes if isinstance(schemes, dict) else {}

    @property
    def component(self) -> str:
        info = self.document.data.get("info") or {}
        return str(info.get("x-component") or info.get("title") or "stub")

    def _parameters(
        self, item: dict[str, Any], raw: dict[str, Any], pointer: str
    ) -> list[Parameter]:
        data = self.document.data
        merged: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        path_pointer = pointer.rsplit("/", 1)[0]
        for base, params in (
            (path_pointer, item.get("parameters")),
            (pointer, raw.get("parameters")),
        ):
            for index, param in enumerate(params or []):
                where = (
                    param["$ref"].lstrip("#")
                    if "$ref" in param
                    else join_pointer(base, "parameters", index)
                )
                resolved = resolve_refs(data, param)
                merged[(resolved["name"], resolved["in"])] = (where, resolved)
        found = []
        for (name, location), (where, param) in merged.items():
            schema = param.get("schema")
            kind = schema_type(data, schema)
            item_kind = None
            if kind == "array":
                items = (resolve_refs(data, schema) or {}).get("items")
                item_kind = schema_type(data, items)
            key = name.lower() if location == "header" else name
            found.append(
                Parameter(
                    name=key,
                    location=location,
                    required=bool(param.get("required")) or location == "path",
                    schema_pointer=join_pointer(where, "schema") if schema is not None else None,
                    coerce=coercer_for(item_kind if kind == "array" else kind),
                    is_array=kind == "array",
                    pointer=join_pointer("", location, key),
                )
            )
        return found

    def _media(self, content: dict[str, Any], pointer: str) -> dict[str, MediaBody]:
        data = self.document.data
        found = {}
        for media_type, media in (content or {}).items():
            examples = {}
            for name, example in (media.get("examples") or {}).items():
                resolved = resolve_refs(data, example)
                if isinstance(resolved, dict) and "value" in resolved:
                    examples[name] = resolved["value"]
            if "example" in media:
                examples.setdefault("example", media["example"])
            has_schema = media.get("schema") is not None
            found[media_type] = MediaBody(
                media_type=media_type,
                schema_pointer=join_pointer(pointer, media_type, "schema") if has_schema else None,
                examples=examples,
            )
        return found

    def _request_body(self, raw: dict[str, Any], pointer: str) -> dict[str, MediaBody]:
        body = raw.get("requestBody")
        if not body:
            return {}
        where = body["$ref"].lstrip("#") if "$ref" in body else join_pointer(pointer, "requestBody")
        return self._media(
            resolve_refs(self.document.data, body).get("content") or {},
            join_pointer(where, "content"),
        )

    def _responses(self, raw: dict[str, Any], pointer: str) -> dict[str, ResponseSpec]:
        data = self.document.data
        found = {}
        for status, response in (raw.get("responses") or {}).items():
            where = (
                response["$ref"].lstrip("#")
                if "$ref" in response
                else join_pointer(pointer, "responses", status)
            )
            resolved = resolve_refs(data, response)
            found[str(status)] = ResponseSpec(
                status=str(status),
                content=self._media(resolved.get("content") or {}, join_pointer(where, "content")),
                headers={
                    name: resolve_refs(data, h)
                    for name, h in (resolved.get("headers") or {}).items()
                },
            )
        return found
