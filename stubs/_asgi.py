"""The ASGI adapter: the only place a stub meets HTTP.

A plain ASGI callable rather than a Starlette app: the pipeline already routes and
validates, so all that is left is reading the body (bounded), building a
:class:`StubRequest` and writing the answer with orjson. Serve it with uvicorn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from ._engine import StubEngine
from ._http import StubRequest, StubResponse
from ._validate_request import MAX_BODY_BYTES

__all__ = ["StubApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class StubApp:
    """ASGI application serving one :class:`StubEngine`."""

    def __init__(self, engine: StubEngine):
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        request = StubRequest(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            ),
            headers={
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in scope.get("headers", [])
            },
            body=body,
        )
        await _write(send, await self.engine.handle(request))


async def _read_body(receive: Receive) -> bytes:
    """The body, cut one byte past the limit so the pipeline can answer 413."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)[: MAX_BODY_BYTES + 1]


async def _write(send: Send, response: StubResponse) -> None:
    payload = b"" if response.body is None else orjson.dumps(response.body)
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    if response.body is not None and response.media_type:
        headers.append((b"content-type", response.media_type.encode("latin-1")))
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
