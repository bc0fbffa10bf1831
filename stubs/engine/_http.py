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
    "StubRequest",
    "StubResponse",
    "decode_body",
    "is_json_media",
    "media_type_of",
]

FORM = "application/x-www-form-urlencoded"


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


@dataclass(slots=True)
class StubResponse:
    status: int
    body: Any = None  # JSON-able data, or None for no body
    media_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    operation_id: str | None = None
    # The body is one of the spec's own examples (immutable spec data, not a copy).
    canned: bool = False
