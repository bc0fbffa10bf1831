"""Does an exchange keep a spec? The checks the engine applies to its own answers,
offered for exchanges it did not make (a real service behind the mesh's proxy)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecom_harness.specs import Api, Operation, SchemaCompileError

from ._http import StubRequest, StubResponse, decode_body
from ._problems import Problem
from ._router import route
from ._validate_request import validate_request

__all__ = ["ContractCheck", "check_exchange", "response_violations"]


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
) -> ContractCheck:
    """Judge a request and (when one came) its response against ``api``: each violation
    as ``"request /body/x: message"`` or ``"response /body/y: message"``."""
    routed = route(api, request.method, request.path)
    if isinstance(routed, Problem):
        return ContractCheck(None, (f"request: {routed.detail}",))
    operation, path_params = routed
    found: list[str] = []
    valid = validate_request(api, operation, path_params, request)
    if isinstance(valid, Problem):
        found += [f"request {e['pointer']}: {e['message']}" for e in valid.errors] or [
            f"request: {valid.detail}"
        ]
    if status is not None:
        answer = StubResponse(
            status, decode_body(response_body, response_media_type), response_media_type
        )
        found += [
            f"response {e['pointer']}: {e['message']}"
            for e in response_violations(api, operation, answer)
        ]
    return ContractCheck(operation.operation_id, tuple(found))
