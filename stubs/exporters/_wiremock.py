"""``--format wiremock``: WireMock mappings (``COMPONENT/mappings/*.json``, one WireMock
root per component, as each service is its own host) built from the spec's examples,
for teams that already run WireMock.

Per operation, the request matchers say what the spec requires -- method, path pattern,
required query parameters and headers (credentials included), the required fields of a
JSON body (JSON path) or form body -- and every response example gets one mapping.
Priorities make the specific win over the generic, the way the stub engine picks:

====  ==================================================================================
1     ``Prefer: code=402, example=declined``: that example (the engine's Prism-style pick)
2     ``Prefer: code=402``: the first example of that status
3     credentials missing: the spec's 401
5     a request the spec accepts: the first 2xx example
9     anything else on that path and method: the spec's 422 (or 400) example
====  ==================================================================================
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from ecom_harness import __version__
from ecom_harness.specs import Api, Operation, load_api, resolve_pointer, resolve_refs
from ecom_harness.stubs.engine import StubResponse, is_json_media, respond_from_spec

from ._source import Sources, SpecFile

__all__ = ["export_wiremock", "path_pattern"]

PRIORITY_EXAMPLE, PRIORITY_STATUS, PRIORITY_AUTH, PRIORITY_DEFAULT, PRIORITY_INVALID = 1, 2, 3, 5, 9
_NAMESPACE = uuid.UUID("6f1c2f4e-5d7a-4f7e-9d1b-2a9c8e0b7d31")
FORM = "application/x-www-form-urlencoded"


def path_pattern(path: str) -> str:
    """``/orders/{id}`` -> ``/orders/[^/]+`` (WireMock matches the whole path)."""
    parts = re.split(r"(\{[^}/]+\})", path)
    return "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)


def _credential(api: Api, operation: Operation) -> tuple[str, str] | None:
    """The header (and its pattern) the operation's first security alternative needs."""
    if not operation.security or not operation.security[0]:
        return None
    scheme = api.security_schemes.get(next(iter(operation.security[0]))) or {}
    if scheme.get("type") == "http":
        return "Authorization", f"(?i){re.escape(str(scheme.get('scheme', 'bearer')))} .+"
    if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
        return str(scheme.get("name")), ".+"
    return None


def _body_matchers(api: Api, operation: Operation) -> dict[str, Any]:
    if not operation.body_required or not operation.body:
        return {}
    media = next(iter(operation.body.values()))
    schema: Any = {}
    if media.schema_pointer:
        schema = resolve_refs(
            api.document.data, resolve_pointer(api.document.data, media.schema_pointer)
        )
    required = [str(r) for r in (schema.get("required") or [])] if isinstance(schema, dict) else []
    if media.media_type == FORM:
        return {"formParameters": {name: {"matches": ".*"} for name in required}}
    if is_json_media(media.media_type):
        patterns: list[dict[str, Any]] = [{"matchesJsonPath": "$"}]
        patterns += [{"matchesJsonPath": f"$.{name}"} for name in required if name.isidentifier()]
        return {"bodyPatterns": patterns}
    return {}


def _request(api: Api, operation: Operation) -> dict[str, Any]:
    """The matchers of a request the spec accepts."""
    request: dict[str, Any] = {
        "method": operation.method,
        "urlPathPattern": path_pattern(operation.path),
    }
    headers = {
        p.name: {"matches": ".+"}
        for p in operation.parameters
        if p.location == "header" and p.required
    }
    credential = _credential(api, operation)
    if credential is not None:
        headers[credential[0]] = {"matches": credential[1]}
    query = {
        p.name: {"matches": ".*"}
        for p in operation.parameters
        if p.location == "query" and p.required
    }
    if headers:
        request["headers"] = headers
    if query:
        request["queryParameters"] = query
    return request | _body_matchers(api, operation)


def _response(answer: StubResponse) -> dict[str, Any]:
    headers = dict(answer.headers)
    found: dict[str, Any] = {"status": answer.status}
    if answer.media_type:
        headers["Content-Type"] = answer.media_type
    if answer.body is not None:
        if answer.media_type and is_json_media(answer.media_type):
            found["jsonBody"] = answer.body
        else:
            found["body"] = str(answer.body)
    if headers:
        found["headers"] = headers
    return found


class _Mappings:
    def __init__(self, component: str, spec: SpecFile):
        self.component, self.spec = component, spec
        self.files: dict[str, bytes] = {}

    def add(
        self,
        operation: Operation,
        label: str,
        priority: int,
        request: dict[str, Any],
        answer: StubResponse,
    ) -> None:
        name = f"{self.component} {operation.operation_id} {label}"
        mapping = {
            "id": str(uuid.uuid5(_NAMESPACE, name)),
            "name": name,
            "priority": priority,
            "request": request,
            "response": _response(answer),
            "metadata": {
                "generator": f"ecom-harness {__version__}",
                "component": self.component,
                "operationId": operation.operation_id,
                "spec": self.spec.relative,
                "specVersion": self.spec.version,
                "specSha256": self.spec.sha256,
            },
        }
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")
        path = f"{self.component}/mappings/{operation.operation_id}.{slug}.json"
        self.files[path] = orjson.dumps(mapping, option=orjson.OPT_INDENT_2) + b"\n"


def _prefer(code: str, example: str | None = None) -> dict[str, str]:
    lookahead = rf"(?=.*\bcode={re.escape(code)}\b)"
    if example is not None:
        lookahead += rf"(?=.*\bexample={re.escape(example)}(?![\w-]))"
    return {"matches": f"{lookahead}.*"}


def _operation_mappings(api: Api, operation: Operation, out: _Mappings) -> None:
    request = _request(api, operation)
    default = respond_from_spec(api, operation, {})
    if isinstance(default, StubResponse):
        out.add(operation, "default", PRIORITY_DEFAULT, request, default)
    for status, response in operation.responses.items():
        if not status.isdigit():
            continue
        media = next(iter(response.content.values()), None)
        examples = list(media.examples) if media else []
        first = respond_from_spec(api, operation, {"code": status})
        if isinstance(first, StubResponse):
            with_code = request | {
                "headers": request.get("headers", {}) | {"Prefer": _prefer(status)}
            }
            out.add(operation, status, PRIORITY_STATUS, with_code, first)
        for example in examples:
            answer = respond_from_spec(api, operation, {"code": status, "example": example})
            if isinstance(answer, StubResponse):
                prefer = {"Prefer": _prefer(status, example)}
                picked = request | {"headers": request.get("headers", {}) | prefer}
                out.add(operation, f"{status}-{example}", PRIORITY_EXAMPLE, picked, answer)
    bare = {"method": operation.method, "urlPathPattern": path_pattern(operation.path)}
    credential = _credential(api, operation)
    if credential is not None and "401" in operation.responses:
        refused = respond_from_spec(api, operation, {"code": "401"})
        if isinstance(refused, StubResponse):
            absent = bare | {"headers": {credential[0]: {"absent": True}}}
            out.add(operation, "unauthorized", PRIORITY_AUTH, absent, refused)
    invalid = next((s for s in ("422", "400") if s in operation.responses), None)
    if invalid is not None and request != bare:
        rejected = respond_from_spec(api, operation, {"code": invalid})
        if isinstance(rejected, StubResponse):
            out.add(operation, "invalid", PRIORITY_INVALID, bare, rejected)


def export_wiremock(sources: Sources) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in sources.components:
        spec = sources.openapi[name]
        api = load_api(spec.path)
        mappings = _Mappings(name, spec)
        for operation in api.operations.values():
            _operation_mappings(api, operation, mappings)
        files |= mappings.files
    files["README.md"] = _readme(sources, len(files)).encode()
    return files


def _readme(sources: Sources, count: int) -> str:
    specs = "\n".join(
        f"- {sources.openapi[n].relative}: {sources.openapi[n].describe()}"
        for n in sources.components
    )
    return f"""# WireMock mappings

Generated by ecom-harness {__version__} ({count} mappings) from:

{specs}

One WireMock root per component (each is its own host); run one with WireMock 3
(`npm install wiremock`, or the standalone jar):

```sh
npx wiremock --root-dir {sources.components[0]} --port 8080
```

Every response example of every operation has a mapping. Without a `Prefer` header a valid
request gets the first 2xx example; `Prefer: code=402, example=declined` picks a named one
and `Prefer: code=404` the first of a status; a request without credentials gets the 401,
one missing required fields the spec's 422 (or 400). `ecom-harness stubs generate --check .`
says whether the specs have changed since.
"""
