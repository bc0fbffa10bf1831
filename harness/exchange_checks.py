"""Judging one proxied exchange against the callee's OpenAPI document, on both sides.

On top of the request and the answer's status and body (``stubs.check_exchange``):

* the callee's **security requirements**: a request without the credentials its
  operation requires (no ``X-Service-Token``) is the caller's violation, even when the
  callee rightly answers 401;
* the answer's **documented headers**: a header the response declares ``required``
  (``Retry-After`` on a 503, ``Location`` on a 201) must be there, and keep its schema;
* an answer the mesh injected as a **fault** is the fault's, never the callee's: only
  the request is judged then.

Each violation starts with ``request`` (the caller's) or ``response`` (the callee's), the
form the journal attributes by (:meth:`Interaction.blame`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs

from ecom_harness.specs import Api, Operation
from ecom_harness.stubs import (
    ContractCheck,
    EngineVerdict,
    StubRequest,
    check_exchange,
    missing_credentials,
)

__all__ = ["header_violations", "judge_exchange"]


def judge_exchange(
    api: Api,
    request: StubRequest,
    *,
    status: int | None,
    response_headers: Mapping[str, str],
    media_type: str | None,
    body: bytes,
    fault_answered: bool = False,
    verdict: EngineVerdict | None = None,
) -> ContractCheck:
    """Every way the exchange breaks ``api``: the request, then (unless a fault answered)
    the response's status, body and documented headers. ``verdict``: the in-process stub
    engine's on the exchange it served, so what it judged is not judged twice (the
    request's validation and the answer's were a tenth of the mesh's loop, issue 15)."""
    judged_status = None if fault_answered else status
    check = check_exchange(api, request, judged_status, media_type, body, verdict=verdict)
    operation = api.operations.get(check.operation_id) if check.operation_id else None
    if operation is None:
        return check
    found = list(check.violations)
    missing = missing_credentials(api, operation, request)
    if missing:
        found.insert(0, f"request: {missing}")
    if judged_status is not None:
        found += header_violations(operation, judged_status, response_headers)
    return ContractCheck(check.operation_id, tuple(found))


def _response_spec(operation: Operation, status: int) -> Any:
    return (
        operation.responses.get(str(status))
        or operation.responses.get(f"{str(status)[0]}XX")
        or operation.responses.get("default")
    )


def header_violations(operation: Operation, status: int, headers: Mapping[str, str]) -> list[str]:
    """``response /header/NAME: ...`` for each required header missing from the answer,
    and each documented header whose value breaks its (inline) schema."""
    spec = _response_spec(operation, status)
    if spec is None:
        return []  # an undocumented status is reported by check_exchange already
    present = {k.lower(): v for k, v in headers.items()}
    found = []
    for name, header in spec.headers.items():
        if not isinstance(header, dict):
            continue
        value = present.get(name.lower())
        pointer = f"response /header/{name.lower()}"
        if value is None:
            if header.get("required"):
                found.append(
                    f"{pointer}: {name} is required on a {status} of {operation.operation_id}"
                )
            continue
        problem = _value_problem(header.get("schema"), value)
        if problem:
            found.append(f"{pointer}: {problem}")
    return found


def _value_problem(schema: Any, text: str) -> str | None:
    """Why the header text breaks its schema (a simple schema: headers are text, so an
    integer schema is checked against the number the text spells)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return None
    kind = schema.get("type")
    value: Any = text
    if kind in ("integer", "number"):
        try:
            value = int(text) if kind == "integer" else float(text)
        except ValueError:
            return f"{text!r} is not an {kind}"
    validator = _validator(schema)
    if validator is None:  # a schema we cannot compile
        return None
    errors = [e.message for e in validator.iter_errors(value)]
    return f"{text!r}: {errors[0]}" if errors else None


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}  # id(schema) -> (schema, validator)
_VALIDATORS_KEPT = 1024  # header schemas of the specs loaded (a few dozen each)


def _validator(schema: dict[str, Any]) -> Any:
    """The header schema's compiled validator (None: it does not compile), compiled
    once: compiling on every exchange was 3% of the mesh's loop under load (issue 15).
    Keyed by the schema object, which the loaded spec keeps (and its id with it)."""
    kept = _VALIDATORS.get(id(schema))
    if kept is None or kept[0] is not schema:
        try:
            validator = jsonschema_rs.validator_for(schema)
        except (ValueError, jsonschema_rs.ValidationError):
            validator = None
        if len(_VALIDATORS) >= _VALIDATORS_KEPT:
            _VALIDATORS.clear()
        kept = _VALIDATORS[id(schema)] = (schema, validator)
    return kept[1]
