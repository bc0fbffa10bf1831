"""The request pipeline of one stub: route -> validate request -> respond -> validate
response -> record.

*Respond* is the component's behaviour for the operationId when it has one, else the
spec's examples. A behaviour whose answer breaks the spec is a stub bug and fails
loudly (500 naming each violation), never silently.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ecom_harness.specs import Api, Operation, unescape_token

from ._contract import request_violations, response_violations
from ._http import EngineVerdict, StubRequest, StubResponse
from ._problems import PROBLEM_MEDIA_TYPE, Problem, problem
from ._respond import parse_prefer, respond_from_spec
from ._router import route
from ._security import missing_credentials
from ._validate_request import ValidRequest, validate_request

__all__ = ["Behaviour", "ErrorRenderer", "Exchange", "StubEngine"]

# A behaviour answers a valid request; returning None falls back to the spec's examples.
Behaviour = Callable[[ValidRequest], Awaitable[StubResponse | None]]
# Turns the engine's own errors (validation, routing) into a component's wire format:
# Stripe, for one, answers 400 with {"error": {...}}, not problem+json.
ErrorRenderer = Callable[[Problem, StubRequest], StubResponse]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the answer it got, for whoever records interactions."""

    request: StubRequest
    response: StubResponse


class StubEngine:
    """Serves one OpenAPI document, optionally with behaviours keyed by operationId."""

    def __init__(
        self,
        api: Api,
        behaviours: Mapping[str, Behaviour] | None = None,
        recorder: Callable[[Exchange], None] | None = None,
        render_error: ErrorRenderer | None = None,
        *,
        lenient_examples: bool = False,
    ):
        unknown = set(behaviours or {}) - set(api.operations)
        if unknown:
            raise ValueError(
                f"behaviours for unknown operationIds of {api.component}: "
                f"{', '.join(sorted(unknown))}"
            )
        self.api = api
        self.behaviours = dict(behaviours or {})
        self.recorder = recorder
        self.render_error = render_error or _problem_response
        self._own_errors = render_error is not None
        # A user's own document, as specs are found in the wild: an example that breaks
        # its own schema is served as written, with the violations in a header (Prism's
        # ``sl-violations``), instead of the 500 kept for answers a simulator made.
        self.lenient_examples = lenient_examples
        # Spec examples already found valid where they were served: (operationId, status,
        # media type, id of the example object). Examples are the Api's own immutable
        # data, so one check per place is enough; behaviours' answers are checked always.
        self._valid_examples: set[tuple[str, int, str | None, int]] = set()

    async def handle(self, request: StubRequest) -> StubResponse:
        response = await self._answer(request)
        if self.recorder is not None:
            self.recorder(Exchange(request, response))
        return response

    async def _answer(self, request: StubRequest) -> StubResponse:
        routed = route(self.api, request.method, request.path)
        if isinstance(routed, Problem):
            return self.render_error(routed, request)
        operation, path_params = routed
        missing = missing_credentials(self.api, operation, request)
        if missing is not None:
            return self._unauthorized(operation, request, missing)
        valid = validate_request(self.api, operation, path_params, request)
        if isinstance(valid, Problem):
            answer_to_invalid = self.render_error(valid, request)
            answer_to_invalid.operation_id = operation.operation_id
            answer_to_invalid.verdict = EngineVerdict(
                operation.operation_id, tuple(request_violations(valid))
            )
            return answer_to_invalid
        behaviour = self.behaviours.get(operation.operation_id)
        answer: StubResponse | Problem | None = await behaviour(valid) if behaviour else None
        if answer is None:
            answer = respond_from_spec(
                self.api,
                operation,
                parse_prefer(request.headers.get("prefer")),
                request.headers.get("accept"),
            )
        if isinstance(answer, Problem):
            refusal = _problem_response(answer, request, operation.operation_id)
            refusal.verdict = EngineVerdict(operation.operation_id)
            return refusal
        answer.operation_id = operation.operation_id
        checked = self._checked(answer, request)
        checked.verdict = EngineVerdict(operation.operation_id, answer_checked=checked is answer)
        return checked

    def _unauthorized(
        self, operation: Operation, request: StubRequest, missing: str
    ) -> StubResponse:
        """The component's own rendering when it has one (it can pick the right 401 and
        fill headers like Stripe's Request-Id), else the spec's own 401 when it documents
        one (its wire format), else a problem."""
        refusal = problem("unauthorized", missing, headers={"WWW-Authenticate": "Bearer"})
        if self._own_errors:
            rendered = self.render_error(refusal, request)
            rendered.operation_id = operation.operation_id
            return rendered
        if "401" in operation.responses:
            documented = respond_from_spec(self.api, operation, {"code": "401"})
            if isinstance(documented, StubResponse):
                documented.operation_id = operation.operation_id
                return documented
        return _problem_response(refusal, request, operation.operation_id)

    def _checked(self, response: StubResponse, request: StubRequest) -> StubResponse:
        """The response itself if it keeps the spec, else a 500 naming each violation."""
        canned_key = (
            str(response.operation_id),
            response.status,
            response.media_type,
            id(response.body),
        )
        if response.canned and canned_key in self._valid_examples:
            return response
        operation = self.api.operations[str(response.operation_id)]
        errors = response_violations(self.api, operation, response)
        if not errors:
            if response.canned:
                self._valid_examples.add(canned_key)
            return response
        if response.canned and self.lenient_examples:
            headers = {**response.headers, SL_VIOLATIONS: sl_violations(errors)}
            return dataclasses.replace(response, headers=headers)
        return _problem_response(
            problem(
                "stub-contract-violation",
                f"{self.api.component} answered "
                f"{operation.operation_id} with {response.status}, which breaks its spec",
                errors=errors,
            ),
            request,
            operation.operation_id,
        )


SL_VIOLATIONS = "sl-violations"
_MAX_HEADER = 8000  # bytes of the header value; longer lists are cut at a whole entry


def sl_violations(errors: list[dict[str, str]]) -> str:
    """The violations as Prism's ``sl-violations`` header: a JSON array of
    ``{"location": ["response", "body", ...], "severity": "Error", "message": ...}``
    (ASCII, so any message fits a header)."""
    entries = [
        {
            "location": ["response", *[unescape_token(t) for t in e["pointer"].split("/")[1:]]],
            "severity": "Error",
            "message": e["message"],
        }
        for e in errors
    ]
    while True:
        text = json.dumps(entries, ensure_ascii=True, separators=(",", ":"))
        if len(text) <= _MAX_HEADER or len(entries) == 1:
            return text
        entries.pop()


def _problem_response(
    found: Problem, request: StubRequest, operation_id: str | None = None
) -> StubResponse:
    return StubResponse(
        found.status,
        found.body(request.path),
        PROBLEM_MEDIA_TYPE,
        dict(found.headers),
        operation_id,
    )
