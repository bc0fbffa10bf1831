"""Plain request and response data: what flows between the pipeline stages.

No stage but the ASGI adapter sees ASGI scopes or sockets; this keeps each stage a
function of data, testable without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

__all__ = [
    "FORM",
    "MAX_JSON_DEPTH",
    "StubRequest",
    "StubResponse",
    "decode_body",
    "is_json_media",
    "media_type_of",
    "nests_deeper_than",
]

FORM = "application/x-www-form-urlencoded"
# How deep a JSON body may nest. No document of the platform comes near it; orjson
# parses up to 1,024 levels but writes only 254, so a deeper body that got in would
# break every later attempt to write it (an answer, the journal).
MAX_JSON_DEPTH = 64


def media_type_of(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_media(media_type: str | None) -> bool:
    return bool(media_type) and (
        media_type == "application/json" or str(media_type).endswith("+json")
    )


def decode_body(body: bytes, media_type: str | None) -> Any:
    """A body as data: JSON parsed, a form as its fields, anything else as text (a body
    that claims JSON but is not stays text); None when empty."""
    if not body:
        return None
    if is_json_media(media_type):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    elif media_type == FORM:
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return body.decode("utf-8", "replace")


def nests_deeper_than(raw: bytes, data: Any, limit: int) -> bool:
    """Whether parsed JSON ``data`` (from ``raw``) has arrays or objects nested more than
    ``limit`` levels. Without more than ``limit`` brackets in ``raw`` it cannot, and that
    count is all it costs for everyday bodies; otherwise the containers are walked
    (iteratively: no recursion limit to hit)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


# What changes on a request between its caller and an in-process callee behind a proxy:
# the proxy forwards no hop-by-hop header, nor Host and Content-Length (the next hop sets
# them), and the in-process client adds httpx's defaults where the caller sent none
# (httpx 0.28's: ``call_app`` sends them, with their values).
NOT_FORWARDED = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    }
)
CLIENT_DEFAULT_HEADERS = frozenset({"accept", "accept-encoding", "connection", "user-agent"})


@dataclass(slots=True)
class StubRequest:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""
    client: str | None = None  # the peer's address (ASGI scope "client"), for per-IP limits

    @property
    def media_type(self) -> str:
        return media_type_of(self.headers.get("content-type"))


@dataclass(frozen=True, slots=True)
class EngineVerdict:
    """What the engine found of a request it served, for a proxy in front of it to judge
    the exchange with instead of doing the same work again: the operation, the request's
    violations (worded as :func:`~._contract.check_exchange` words them), and whether
    the answer is one the engine checked against the spec and found clean."""

    operation_id: str
    request_violations: tuple[str, ...] = ()
    answer_checked: bool = False


@dataclass(slots=True)
class StubResponse:
    status: int
    body: Any = None  # JSON-able data, or None for no body
    media_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    operation_id: str | None = None
    # The body is one of the spec's own examples (immutable spec data, not a copy).
    canned: bool = False
    verdict: EngineVerdict | None = None  # set by the engine (not part of the answer)
