"""The caller's address, carried across an edge proxy into an in-process stub.

A recording proxy is a tap, not a hop the callee should notice: the gateway's per-IP
limit must see the client's own address, not the proxy's. Over a socket the callee
sees the proxy's; into an in-process stub (``httpx.ASGITransport``) it would see the
transport's fixed ``127.0.0.1``. So the proxy's ASGI app remembers the peer of the
request it serves (:func:`remembering_peer`, in a context variable: one value per
request task) and the transport into the stub hands that same peer on as the ASGI
``client`` (:class:`PeerTransport`). Nothing is written into headers: what the client
sent in ``X-Forwarded-For`` reaches the callee unchanged, for the callee to believe or
not (the gateway believes trusted proxies only).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import httpx

from ecom_harness.stubs import Receive, Scope, Send

__all__ = ["PeerTransport", "remembering_peer"]

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


class PeerTransport(httpx.ASGITransport):
    """Into an in-process app, as the peer the proxy is serving (else the default)."""

    def __init__(self, app: App):
        async def as_peer(scope: Scope, receive: Receive, send: Send) -> None:
            peer = _PEER.get()
            await app({**scope, "client": peer} if peer else scope, receive, send)

        super().__init__(app=as_peer)
