"""Does an exchange keep a spec? The checks the engine applies to its own answers,
offered for exchanges it did not make (a real service behind the mesh's proxy)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecom_harness.specs import Api, Operation, SchemaCompileError

from ._http import (
    CLIENT_DEFAULT_HEADERS,
    NOT_FORWARDED,
    EngineVerdict,
    StubRequest,
    StubResponse,
    decode_body,
)
from ._problems import Problem
from ._router import route
from ._validate_request import MAX_BODY_BYTES, validate_request

__all__ = ["ContractCheck", "check_exchange", "request_violations", "response_violations"]

# What a proxy drops from a request, or its in-process client adds: an operation that
# declares one of them as a parameter is judged on the request as its caller sent it,
# not as the engine received it.
_ADDED_ON_THE_WAY = NOT_FORWARDED | CLIENT_DEFAULT_HEADERS


def response_violations(
    api: Api, operation: Operation, response: StubResponse
) -> list[dict[str, str]]:
    """Every way ``response`` breaks ``operation``'s documented responses, as
    ``{pointer, message}`` (status, media type, then the body against its schema)."""
    spec = (
        operation.responses.get(str(response.status))
        or operation.responses.get(f"{str(response.status)[0]}XX")
        or operation.responses.get("default")
    )
    if spec is None:
        return [
            {
                "pointer": "/status",
                "message": f"{response.status} is not a documented "
                f"response of {operation.operation_id}",
            }
        ]
    if response.body is None:
        return []
    media = spec.content.get(str(response.media_type))
    if media is None:
        return [
            {
                "pointer": "/media_type",
                "message": f"{response.media_type} is not documented for {response.status}",
            }
        ]
    if media.schema_pointer is None:
        return []
    try:
        found = api.schemas.violations(media.schema_pointer, response.body)
    except SchemaCompileError as exc:
        return [{"pointer": "/body", "message": f"unusable schema: {exc}"}]
    return [{"pointer": "/body" + v.pointer, "message": v.message} for v in found]


@dataclass(frozen=True, slots=True)
class ContractCheck:
    """The operation an exchange matched (None if none) and what broke the spec."""

    operation_id: str | None
    violations: tuple[str, ...] = field(default=())


def check_exchange(
    api: Api,
    request: StubRequest,
    status: int | None,
    response_media_type: str | None,
    response_body: bytes,
    *,
    verdict: EngineVerdict | None = None,
) -> ContractCheck:
    """Judge a request and (when one came) its response against ``api``: each violation
    as ``"request /body/x: message"`` or ``"response /body/y: message"``. With the
    ``verdict`` of the stub engine that served the exchange (a proxy in front of an
    in-process stub), what the engine already judged is taken from it: the request,
    and the answer when the engine checked it."""
    operation = api.operations.get(verdict.operation_id) if verdict is not None else None
    if verdict is not None and operation is not None and _as_sent(operation, request):
        if status is None or verdict.answer_checked:  # nothing left to judge
            return ContractCheck(operation.operation_id, verdict.request_violations)
        found = list(verdict.request_violations)
    else:
        routed = route(api, request.method, request.path)
        if isinstance(routed, Problem):
            return ContractCheck(None, (f"request: {routed.detail}",))
        operation, path_params = routed
        valid = validate_request(api, operation, path_params, request)
        found = request_violations(valid) if isinstance(valid, Problem) else []
    if status is not None:
        answer = StubResponse(
            status, decode_body(response_body, response_media_type), response_media_type
        )
        found += [
            f"response {e['pointer']}: {e['message']}"
            for e in response_violations(api, operation, answer)
        ]
    return ContractCheck(operation.operation_id, tuple(found))


def request_violations(invalid: Problem) -> list[str]:
    """A request's violations, as :func:`check_exchange` words them."""
    return [f"request {e['pointer']}: {e['message']}" for e in invalid.errors] or [
        f"request: {invalid.detail}"
    ]


def _as_sent(operation: Operation, request: StubRequest) -> bool:
    """Whether the request the engine received judges as the one its caller sent: no
    parameter of the operation is a header added or dropped on the way, and the body
    is whole (the engine reads one byte past its limit, and says that size)."""
    return len(request.body) <= MAX_BODY_BYTES and not any(
        p.location == "header" and p.name.lower() in _ADDED_ON_THE_WAY for p in operation.parameters
    )
