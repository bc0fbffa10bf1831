"""The stub engine: one module per stage of a request -- route, check credentials,
validate the request, respond from examples, check the response -- plus plain HTTP data,
problem+json and the ASGI adapter (the only code here that touches sockets).

May import: ``ecom_harness.specs``.
"""

from __future__ import annotations

from ._asgi import (
    SERVER_KEEPALIVE,
    PortDispatcher,
    Receive,
    RequestHead,
    Scope,
    Send,
    StubApp,
    bind,
    read_request,
    serve_sockets,
)
from ._contract import ContractCheck, check_exchange, response_violations
from ._engine import Behaviour, ErrorRenderer, Exchange, StubEngine
from ._http import (
    CLIENT_DEFAULT_HEADERS,
    FORM,
    MAX_JSON_DEPTH,
    NOT_FORWARDED,
    EngineVerdict,
    StubRequest,
    StubResponse,
    decode_body,
    is_json_media,
    media_type_of,
    nests_deeper_than,
)
from ._problems import PROBLEM_MEDIA_TYPE, Problem, problem
from ._respond import parse_prefer, respond_from_spec, sample_from_schema
from ._router import route
from ._security import missing_credentials
from ._validate_request import MAX_BODY_BYTES, ValidRequest, decode_form, validate_request

__all__ = [
    "CLIENT_DEFAULT_HEADERS",
    "FORM",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "NOT_FORWARDED",
    "PROBLEM_MEDIA_TYPE",
    "SERVER_KEEPALIVE",
    "Behaviour",
    "ContractCheck",
    "EngineVerdict",
    "ErrorRenderer",
    "Exchange",
    "PortDispatcher",
    "Problem",
    "Receive",
    "RequestHead",
    "Scope",
    "Send",
    "StubApp",
    "StubEngine",
    "StubRequest",
    "StubResponse",
    "ValidRequest",
    "bind",
    "check_exchange",
    "decode_body",
    "decode_form",
    "is_json_media",
    "media_type_of",
    "missing_credentials",
    "nests_deeper_than",
    "parse_prefer",
    "problem",
    "read_request",
    "respond_from_spec",
    "response_violations",
    "route",
    "sample_from_schema",
    "serve_sockets",
    "validate_request",
]
