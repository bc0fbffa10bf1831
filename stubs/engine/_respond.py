"""Respond from the spec: pick a response and an example, Prism-style.

``Prefer: code=402`` picks the response by status, ``example=declined`` the named
example; without them the first 2xx response and its first example answer. A response
with a schema but no example gets a value generated from the schema.
"""

from __future__ import annotations

import re
from typing import Any

from ecom_harness.specs import Api, MediaBody, Operation, ResponseSpec, resolve_refs

from ._http import StubResponse
from ._problems import Problem, problem

__all__ = ["parse_prefer", "respond_from_spec", "sample_from_schema"]

_PREFER_ITEM = re.compile(r"\s*([a-zA-Z_-]+)\s*=\s*\"?([^\",;]*)\"?\s*")


def parse_prefer(header: str | None) -> dict[str, str]:
    """``code=402, example=declined`` -> ``{"code": "402", "example": "declined"}``."""
    if not header:
        return {}
    return {
        m[1].lower(): m[2]
        for part in re.split(r"[,;]", header)
        if (m := _PREFER_ITEM.fullmatch(part))
    }


def _pick_response(operation: Operation, code: str | None) -> ResponseSpec | None:
    if code is None:
        return next(
            (r for s, r in operation.responses.items() if s.startswith("2")),
            next(iter(operation.responses.values()), None),
        )
    for candidate in (code, code[0] + "XX", "default"):
        if candidate in operation.responses:
            return operation.responses[candidate]
    return None


def _status_of(response: ResponseSpec, code: str | None) -> int:
    if response.status.isdigit():
        return int(response.status)
    return (
        int(code)
        if code and code.isdigit()
        else 200
        if response.status == "default"
        else int(response.status[0]) * 100
    )


def respond_from_spec(
    api: Api, operation: Operation, prefer: dict[str, str], accept: str | None = None
) -> StubResponse | Problem:
    """The spec's canned answer to a valid request. An answer taken from the spec's
    examples is worked out once per operation and preference, then reused (it depends on
    nothing else); problems and schema-generated values are worked out each time."""
    key = (prefer.get("code"), prefer.get("example"), accept)
    found = operation.canned.get(key)
    if found is None:
        found = _work_out(api, operation, prefer, accept)
        if isinstance(found, Problem) or not found.canned:
            return found  # generated from the schema: a fresh value each time, not kept
        operation.canned[key] = found
    return StubResponse(
        found.status,
        found.body,
        found.media_type,
        dict(found.headers),
        operation.operation_id,
        canned=True,
    )


def _work_out(
    api: Api, operation: Operation, prefer: dict[str, str], accept: str | None
) -> StubResponse | Problem:
    code = prefer.get("code")
    response = _pick_response(operation, code)
    if response is None:
        return problem(
            "not-acceptable",
            f"{operation.operation_id} has no {code} response; "
            f"it has {', '.join(operation.responses)}",
        )
    status = _status_of(response, code)
    headers = {
        name: str(_header_sample(api, spec))
        for name, spec in response.headers.items()
        if isinstance(spec, dict) and spec.get("required")
    }
    if not response.content:
        return StubResponse(status, None, None, headers, operation.operation_id)
    media = _pick_media(response, accept)
    wanted = prefer.get("example")
    if wanted is not None:
        if wanted not in media.examples:
            return problem(
                "not-acceptable",
                f"{operation.operation_id} {response.status} has no "
                f"example '{wanted}'; it has {', '.join(media.examples) or 'none'}",
            )
        body = media.examples[wanted]
    elif media.examples:
        body = next(iter(media.examples.values()))
    else:
        schema = {"$ref": "#" + media.schema_pointer} if media.schema_pointer else {}
        body = sample_from_schema(api.document.data, schema)
        return StubResponse(status, body, media.media_type, headers, operation.operation_id)
    return StubResponse(
        status, body, media.media_type, headers, operation.operation_id, canned=True
    )


def _pick_media(response: ResponseSpec, accept: str | None) -> MediaBody:
    if accept:
        for media_type, media in response.content.items():
            if media_type in accept:
                return media
    return next(iter(response.content.values()))


def _header_sample(api: Api, header: dict[str, Any]) -> Any:
    examples = header.get("examples")
    if isinstance(examples, dict) and examples:
        first = resolve_refs(api.document.data, next(iter(examples.values())))
        if isinstance(first, dict) and "value" in first:
            return first["value"]
    return sample_from_schema(api.document.data, header.get("schema") or {})


_TYPE_SAMPLES: dict[str, Any] = {
    "string": "string",
    "integer": 0,
    "number": 0,
    "boolean": True,
    "null": None,
}
_FORMAT_SAMPLES = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


_NO_LITERAL = object()


def _literal_sample(schema: dict[str, Any]) -> Any:
    """A value the schema itself spells out, or ``_NO_LITERAL``."""
    for key in ("const", "default", "example"):
        if key in schema:
            return schema[key]
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    return _NO_LITERAL


def sample_from_schema(doc: dict[str, Any], schema: Any, depth: int = 0) -> Any:  # noqa: PLR0911
    """A plausible value for a schema: its own example, default, const or enum first,
    then one built from its type. (Patterns are not reverse-engineered: a schema that
    needs one should carry an example, which the lint asks for anyway.)"""
    schema = resolve_refs(doc, schema)
    if not isinstance(schema, dict) or depth > 12:
        return None
    literal = _literal_sample(schema)
    if literal is not _NO_LITERAL:
        return literal
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return sample_from_schema(doc, schema[key][0], depth + 1)
    if schema.get("allOf"):
        parts = [sample_from_schema(doc, part, depth + 1) for part in schema["allOf"]]
        return {k: v for part in parts if isinstance(part, dict) for k, v in part.items()}
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required") or [])
        return {
            name: sample_from_schema(doc, sub, depth + 1)
            for name, sub in (schema.get("properties") or {}).items()
            if name in required
        }
    if kind == "array":
        return [
            sample_from_schema(doc, schema.get("items") or {}, depth + 1)
            for _ in range(int(schema.get("minItems", 0)))
        ]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    return _FORMAT_SAMPLES.get(schema.get("format", ""), _TYPE_SAMPLES.get(str(kind)))
