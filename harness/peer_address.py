"""The caller's address, carried across an edge proxy into an in-process stub.

A recording proxy is a tap, not a hop the callee should notice: the gateway's per-IP
limit must see the client's own address, not the proxy's. Over a socket the callee
sees the proxy's; into an in-process stub (``httpx.ASGITransport``) it would see the
transport's fixed ``127.0.0.1``. So the proxy's ASGI app remembers the peer of the
request it serves (:func:`remembering_peer`, in a context variable: one value per
request task) and the transport into the stub hands that same peer on as the ASGI
``client`` (:class:`PeerApp`). Nothing is written into headers: what the client
sent in ``X-Forwarded-For`` reaches the callee unchanged, for the callee to believe or
not (the gateway believes trusted proxies only).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from ecom_harness.stubs import AppAnswer, Receive, Scope, Send, call_app

__all__ = ["PeerApp", "remembering_peer"]

_DEFAULT_PEER = ("127.0.0.1", 123)  # what httpx.ASGITransport reports

_PEER: ContextVar[tuple[str, int] | None] = ContextVar("ecom_harness_peer", default=None)

App = Any  # an ASGI application


def remembering_peer(app: App) -> App:
    """``app``, with the peer of each request it serves remembered for the transport."""

    async def remember(scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        token = _PEER.set((str(client[0]), int(client[1])) if client else None)
        try:
            await app(scope, receive, send)
        finally:
            _PEER.reset(token)

    return remember


class PeerApp:
    """An in-process callee, called as the peer the proxy is serving (else the address
    ``httpx.ASGITransport`` would give), without an httpx client around the call."""

    def __init__(self, app: App, host: str):
        self.app, self.host = app, host
        self.base_url = f"http://{host}"  # where error messages say the callee is

    async def call(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> AppAnswer:
        client = _PEER.get() or _DEFAULT_PEER
        return await call_app(
            self.app,
            method,
            path,
            query=query,
            headers=headers,
            body=body,
            host=self.host,
            client=client,
        )
