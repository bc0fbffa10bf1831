"""Validate a request against its operation: parameters, then the body.

Every violation is collected with a pointer into the request -- ``/path/sku``,
``/query/limit``, ``/header/idempotency-key``, ``/body/items/0/quantity`` -- so a client
sees all its mistakes in one answer, not one per round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from ecom_harness.specs import (
    Api,
    Operation,
    SchemaCompileError,
    coercer_for,
    resolve_refs,
    schema_type,
)

from ._http import FORM, MAX_JSON_DEPTH, StubRequest, is_json_media, nests_deeper_than
from ._problems import Problem, problem

__all__ = ["MAX_BODY_BYTES", "ValidRequest", "validate_request"]

MAX_BODY_BYTES = 1 << 20


@dataclass(slots=True)
class ValidRequest:
    """A request that passed validation, with its parameters and body parsed."""

    operation: Operation
    params: dict[str, dict[str, Any]]  # location -> name -> value
    body: Any
    request: StubRequest

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name.lower())


def _check(
    api: Api, pointer: str | None, value: Any, where: str, errors: list[dict[str, str]]
) -> None:
    if pointer is None:
        return
    try:
        violations = api.schemas.violations(pointer, value)
    except SchemaCompileError as exc:
        errors.append({"pointer": where, "message": f"unusable schema in the spec: {exc}"})
        return
    errors.extend({"pointer": where + v.pointer, "message": v.message} for v in violations)


def _parse_form(raw: bytes) -> dict[str, Any]:
    """Form fields, with Stripe-style ``metadata[key]=value`` nested into objects and
    arrays in both of Stripe's forms: indexed ``x[0]=a`` (an object of digit keys, made
    a list by :func:`_coerce_form`) and the bracket form of its curl examples
    ``x[]=a&x[]=b``."""
    found: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        if "[" in key and key.endswith("]"):
            outer, inner = key[:-1].split("[", 1)
            if inner == "":
                existing = found.setdefault(outer, [])
                if isinstance(existing, list):
                    existing.append(value)
                else:  # x[0]=a mixed with x[]=b: append after the indexed ones
                    existing[str(len(existing))] = value
            else:
                holder = found.setdefault(outer, {})
                if isinstance(holder, list):  # x[]=a then x[1]=b
                    holder = found[outer] = {str(i): v for i, v in enumerate(holder)}
                holder[inner] = value
        else:
            found[key] = value
    return found


def _parse_json(raw: bytes) -> Any | Problem:
    """The JSON body, or 400: not JSON, or nested past MAX_JSON_DEPTH (a body no answer
    or journal could write back; see stubs._http)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return problem("bad-request", f"the body is not valid JSON: {exc}")
    if isinstance(body, dict | list) and nests_deeper_than(raw, body, MAX_JSON_DEPTH):
        return problem(
            "bad-request", f"the body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels"
        )
    return body


def _parse_body(
    api: Api, operation: Operation, request: StubRequest, errors: list[dict[str, str]]
) -> Any | Problem:
    if not request.body:
        if operation.body_required:
            errors.append({"pointer": "/body", "message": "a request body is required"})
        return None
    if len(request.body) > MAX_BODY_BYTES:
        return problem(
            "payload-too-large",
            f"the body has {len(request.body)} bytes; the limit is {MAX_BODY_BYTES}",
        )
    media = operation.body.get(request.media_type)
    if media is None:
        accepted = ", ".join(operation.body) or "no body"
        return problem(
            "unsupported-media-type",
            f"'{request.media_type or 'none'}' is not accepted here; use {accepted}",
        )
    if is_json_media(media.media_type):
        body = _parse_json(request.body)
        if isinstance(body, Problem):
            return body
    elif media.media_type == FORM:
        body = _parse_form(request.body)
        body = _coerce_form(api, media.schema_pointer, body)
    else:
        return request.body
    _check(api, media.schema_pointer, body, "/body", errors)
    return body


def decode_form(api: Api, pointer: str | None, raw: bytes) -> dict[str, Any]:
    """A form body as the data its schema describes (nested ``a[b]`` members, typed values),
    as the stub validates it: for checks that hold a form body outside a request."""
    return _coerce_form(api, pointer, _parse_form(raw))


def _coerce_form(api: Api, pointer: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """Form values are strings; turn them into what the schema types them as, nested
    members included (``automatic_payment_methods[enabled]=true`` -> True), and
    Stripe-style indexed members of an array into a list
    (``payment_method_types[0]=card`` -> ["card"])."""
    if pointer is None:
        return body
    coerced: dict[str, Any] = _coerce_value(api.document.data, {"$ref": "#" + pointer}, body)
    return coerced


def _coerce_value(data: dict[str, Any], schema: Any, value: Any) -> Any:
    resolved = resolve_refs(data, schema)
    resolved = resolved if isinstance(resolved, dict) else {}
    kind = schema_type(data, resolved)
    if kind == "array" and isinstance(value, dict) and value and all(k.isdigit() for k in value):
        value = [value[k] for k in sorted(value, key=int)]
    if isinstance(value, str):
        return coercer_for(kind)(value)
    if isinstance(value, list):
        return [_coerce_value(data, resolved.get("items") or {}, item) for item in value]
    if isinstance(value, dict):
        members = resolved.get("properties") or {}
        return {
            k: _coerce_value(data, members[k], v) if k in members else v for k, v in value.items()
        }
    return value


def validate_request(
    api: Api, operation: Operation, path_params: dict[str, str], request: StubRequest
) -> ValidRequest | Problem:
    """The parsed request, or the problem that lists every violation."""
    errors: list[dict[str, str]] = []
    params: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}, "cookie": {}}
    for param in operation.parameters:
        where = param.pointer
        if param.location == "path":
            raw: list[str] | None = [unquote(path_params.get(param.name, ""))]
        elif param.location == "query":
            raw = request.query.get(param.name)
        elif param.location == "header":
            header = request.headers.get(param.name)
            raw = None if header is None else [header]
        else:
            continue
        if raw is None:
            if param.required:
                errors.append(
                    {
                        "pointer": where,
                        "message": f"required {param.location} parameter '{param.name}' is missing",
                    }
                )
            continue
        if param.is_array:
            parts = [p for item in raw for p in item.split(",")]
            value: Any = [param.coerce(p) for p in parts]
        else:
            value = param.coerce(raw[-1])
        params[param.location][param.name] = value
        _check(api, param.schema_pointer, value, where, errors)
    body = _parse_body(api, operation, request, errors)
    if isinstance(body, Problem):
        return body
    if errors:
        return problem(
            "validation-error",
            f"{len(errors)} violation(s) of {operation.operation_id}'s request contract",
            errors=errors,
        )
    return ValidRequest(operation, params, body, request)
