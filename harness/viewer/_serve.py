"""Serving the live UI with uvicorn until told to stop (the CLI's Ctrl-C)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from ecom_harness._startup import imports_done
from ecom_harness.stubs import bind

__all__ = ["listen", "serve_ui"]


def listen(host: str, port: int) -> socket.socket:
    """The UI's listening socket (the stubs' ASGI adapter binds it, as for the mesh),
    bound before the server starts, so a busy port is one clear ``OSError`` rather than
    a log line from inside uvicorn."""
    return bind(host, port)


async def serve_ui(
    app: ASGIApp,
    sock: socket.socket,
    requested: threading.Event,
    ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``app`` on ``sock`` until ``requested`` is set; ``ready`` once it listens."""
    imports_done()  # serving: what the process loads to start is loaded
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    async def stop_when_requested() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        ready()
        await asyncio.to_thread(requested.wait)
        server.should_exit = True

    watcher = asyncio.create_task(stop_when_requested())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
        requested.set()  # let the waiting thread go if the server stopped by itself
