"""A chosen set of stubs served on loopback, each behind a recording proxy of its own:
what a served bundle and the pytest plugin's ``--ecom-stubs`` run.

Unlike the mesh, nothing here follows the topology: the served components are the
ones asked for, the components they call are hosted in-process behind them, and the
caller is whoever connects -- journaled as ``client``, so its edge to a served
component is ``client->order-svc``. Latency and faults are set per served component.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ecom_harness.specs import MessageValidator
from ecom_harness.stubs import (
    Backends,
    InMemoryBus,
    PortDispatcher,
    StubHost,
    bind,
    serve_sockets,
)

from .addresses import http_url
from .faults import Fault, FaultBook
from .journal import Journal
from .proxy import RecordingProxy

__all__ = ["CALLER", "StubServer", "StubServerOptions"]

CALLER = "client"
Scope = MutableMapping[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StubServerOptions:
    served: tuple[str, ...]  # components given a port, in order
    specs: Mapping[str, Path]  # every hosted component -> its OpenAPI file
    asyncapi: Path | None = None  # the events document (default: the shipped one)
    host: str = "127.0.0.1"
    port: int = 0  # the first served component's port, then +1 each; 0: free ports
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    faults: Mapping[str, Fault] = field(default_factory=dict)
    seeds: Mapping[str, Any] = field(default_factory=dict)  # handed to simulator.seed()
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    backends: Backends = field(default_factory=Backends)


def _delayed(app: App, delay_ms: float) -> App:
    async def delayed(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(delay_ms / 1000)
        await app(scope, receive, send)

    return delayed


class StubServer:
    """Start with ``await server.start()`` (or ``async with``); ``urls`` maps each served
    component to its address; ``journal`` and ``faults`` as in the mesh."""

    def __init__(self, options: StubServerOptions):
        self.options = options
        self.journal = Journal()
        self.faults = FaultBook()
        self.urls: dict[str, str] = {}
        self.host: StubHost | None = None
        self._sockets: list[socket.socket] = []
        self._clients: list[httpx.AsyncClient] = []
        self._stop = asyncio.Event()
        self._server: asyncio.Task[None] | None = None
        for name, fault in options.faults.items():
            self.faults.set(self.edge(name), fault)

    @staticmethod
    def edge(component: str) -> str:
        return f"{CALLER}->{component}"

    def url(self, name: str) -> str:
        return self.urls[name]

    async def start(self) -> StubServer:
        try:
            for index, name in enumerate(self.options.served):
                port = self.options.port + index if self.options.port else 0
                sock = bind(self.options.host, port)
                self._sockets.append(sock)
                self.urls[name] = http_url(self.options.host, sock.getsockname()[1])
            self.host = StubHost(
                specs=dict(self.options.specs),
                backends=self.options.backends,
                settings=self.options.settings,
                bus=InMemoryBus(
                    validator=MessageValidator.load(self.options.asyncapi),
                    observer=self.journal.observe_bus,
                ),
            )
            await self.host.start()
            for name, data in self.options.seeds.items():
                stub = self.host.stubs.get(name)
                seed = getattr(stub.simulator, "seed", None) if stub else None
                if seed is None:
                    raise ValueError(f"seed: {name} has no simulator that takes seed data")
                await seed(data)
            apps: dict[int, Any] = {
                sock.getsockname()[1]: self._app(name)
                for name, sock in zip(self.options.served, self._sockets, strict=True)
            }
            self._server = asyncio.create_task(
                serve_sockets(PortDispatcher(apps), self._sockets, self._stop)
            )
        except BaseException:
            await self.stop()
            raise
        return self

    def _app(self, name: str) -> App:
        assert self.host is not None
        stub = self.host.stubs[name]
        upstream = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stub.app), base_url=f"http://{name}", timeout=None
        )
        self._clients.append(upstream)
        proxy: App = RecordingProxy(
            CALLER, name, upstream=upstream, api=stub.api, journal=self.journal, faults=self.faults
        )
        delay = self.options.latency_ms.get(name, 0)
        return _delayed(proxy, delay) if delay > 0 else proxy

    async def reset(self) -> None:
        """Every simulator forgets its state; journal and faults clear."""
        if self.host is not None:
            await self.host.reset()
        self.journal.clear()
        self.faults.clear()

    async def stop(self) -> None:
        """Stop everything this server started, by its own handles; safe to call twice."""
        self._stop.set()
        if self._server is not None:
            await self._server
            self._server = None
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        if self.host is not None:
            await self.host.stop()
            self.host = None

    async def __aenter__(self) -> StubServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
