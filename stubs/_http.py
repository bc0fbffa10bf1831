"""Plain request and response data: what flows between the pipeline stages.

No stage but the ASGI adapter sees ASGI scopes or sockets; this keeps each stage a
function of data, testable without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["StubRequest", "StubResponse"]


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
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(slots=True)
class StubResponse:
    status: int
    body: Any = None  # JSON-able data, or None for no body
    media_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    operation_id: str | None = None
    # The body is one of the spec's own examples (immutable spec data, not a copy).
    canned: bool = False
