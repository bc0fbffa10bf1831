"""Host a set of component stubs: build each one's engine, state and peers.

Peers are the plug-in point: by default a component reaches the others through
``httpx.ASGITransport`` into their in-process apps (no socket); given a URL for a peer
(a real service, or the mesh's recording proxy for that edge) it goes there instead --
without a socket when an ASGI app in this process serves that URL (``in_process``: the
mesh's proxies, see :class:`~._in_process.InProcessTransport`).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from ecom_harness.specs import Api, load_api, shipped_spec
from ecom_harness.stubs.behaviours import (
    Deadlines,
    PeerClient,
    Peers,
    Simulator,
    SimulatorContext,
    peer_client,
)
from ecom_harness.stubs.engine import Exchange, StubApp, StubEngine
from ecom_harness.stubs.state import Backends, Database, open_database, open_redis, reach_redis

from ._in_process import InProcessTransport
from .behaviours import SIMULATORS

__all__ = [
    "HostedStub",
    "StubHost",
    "shared_tls",
]


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One TLS context for every client to a URL: building one reads the CA bundle
    (~20 ms), and a mesh makes a client per edge."""
    return httpx.create_ssl_context()


def _takes_service_token(api: Api) -> bool:
    """Internal services authenticate callers by ``X-Service-Token``; external providers
    must never be sent it (they have credentials of their own)."""
    schemes = (api.document.data.get("components") or {}).get("securitySchemes") or {}
    return any(
        s.get("type") == "apiKey" and str(s.get("name", "")).lower() == "x-service-token"
        for s in schemes.values()
        if isinstance(s, dict)
    )


@dataclass(slots=True)
class HostedStub:
    name: str
    api: Api
    engine: StubEngine
    app: StubApp
    simulator: Simulator | None
    db: Database


@dataclass(slots=True)
class StubHost:
    """Builds, starts and stops stubs. ``specs`` maps component name -> OpenAPI file."""

    specs: Mapping[str, Path]
    backends: Backends = field(default_factory=Backends)
    peer_urls: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    deadlines: Deadlines = field(default_factory=Deadlines)  # every timeout, one place
    bus: Any = None  # an EventBus, started after the simulators subscribe; stopped here
    recorder: Any = None  # Callable[[str, Exchange], None]: component name + exchange
    examples_only: frozenset[str] = frozenset()  # served from spec examples, no simulator
    # caller -> {callee: URL}: when set, each caller reaches exactly these peers (the
    # mesh's per-edge proxies) and nothing else; unset, every hosted stub in-process.
    routes: Mapping[str, Mapping[str, str]] | None = None
    # URL -> the ASGI app in this process serving it: callers reach those URLs without
    # a socket (the URL still names the peer: the Host header is the socket's)
    in_process: Mapping[str, Any] = field(default_factory=dict)
    stubs: dict[str, HostedStub] = field(default_factory=dict)
    redis: aioredis.Redis | None = None
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @classmethod
    def shipped(cls, components: list[str], **options: Any) -> StubHost:
        return cls(specs={name: shipped_spec(name) for name in components}, **options)

    async def start(self) -> StubHost:
        self.redis = open_redis(self.backends)
        await reach_redis(self.redis, self.backends)
        apis = {name: load_api(path) for name, path in self.specs.items()}
        peers: dict[str, Peers] = {name: Peers() for name in apis}
        for name, api in apis.items():
            db = await open_database(name, self.backends)
            ctx = SimulatorContext(
                component=name,
                api=api,
                db=db,
                redis=self.redis,
                peers=peers[name],
                bus=self.bus,
                settings=self.settings.get(name, {}),
                deadlines=self.deadlines.for_component(self.settings.get(name, {})),
            )
            simulated = name in SIMULATORS and name not in self.examples_only
            simulator = SIMULATORS[name](ctx) if simulated else None
            engine = StubEngine(
                api,
                simulator.behaviours() if simulator else None,
                recorder=self._recorder_for(name),
                render_error=simulator.render_error() if simulator else None,
            )
            self.stubs[name] = HostedStub(name, api, engine, StubApp(engine), simulator, db)
            await _let_others_run()
        for name in apis:
            peers[name].add(self._peer_clients(name))
        for stub in self.stubs.values():
            if stub.simulator is not None:
                await stub.simulator.start()
                await _let_others_run()
        if self.bus is not None:  # after the simulators subscribed
            await self.bus.start()
        return self

    def _recorder_for(self, name: str) -> Any:
        if self.recorder is None:
            return None
        recorder = self.recorder

        def record(exchange: Exchange) -> None:
            recorder(name, exchange)

        return record

    def _peer_clients(self, caller: str) -> dict[str, httpx.AsyncClient]:
        if self.routes is not None:
            urls = dict(self.routes.get(caller, {}))
        else:
            urls = {t: u for t, u in self.peer_urls.items() if t != caller}
            urls |= {t: "" for t in self.stubs if t != caller and t not in urls}
        clients: dict[str, httpx.AsyncClient] = {}
        for target, url in urls.items():
            takes_token = target not in self.stubs or _takes_service_token(self.stubs[target].api)
            headers = {"X-Service-Token": f"{caller}-token"} if takes_token else {}
            timeout = self.deadlines.edge(caller, target)
            app = self.in_process.get(url) if url else None
            if app is not None:
                client = PeerClient(
                    transport=InProcessTransport(app),
                    base_url=url,
                    headers=headers,
                    timeout=timeout,
                )
            elif url:
                client = peer_client(
                    url,
                    timeout=timeout,
                    deadlines=self.deadlines,
                    headers=headers,
                    verify=shared_tls(),
                )
            else:  # in-process: no socket (simulators bound the wait with asyncio)
                transport = httpx.ASGITransport(app=self.stubs[target].app)
                client = PeerClient(
                    transport=transport,
                    base_url=f"http://{target}",
                    headers=headers,
                    timeout=timeout,
                )
            self._clients.append(client)
            clients[target] = client
        return clients

    async def reset(self) -> None:
        """Every simulator forgets its state (between scenarios)."""
        for stub in self.stubs.values():
            if stub.simulator is not None:
                await stub.simulator.reset()

    async def stop(self) -> None:
        for stub in self.stubs.values():
            if stub.simulator is not None:
                await stub.simulator.stop()
        if self.bus is not None:
            await self.bus.stop()
        for client in self._clients:
            await client.aclose()
        for stub in self.stubs.values():
            await stub.db.dispose()
        if self.redis is not None:
            await self.redis.aclose()

    async def __aenter__(self) -> StubHost:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _let_others_run() -> None:
    """Starting a host is CPU work whose awaits (embedded SQLite) seldom suspend; between
    two stubs the loop runs whatever else is ready, so a mesh starting beside a running
    one (``run``'s meshes side by side) delays its requests by one stub's start, not by
    the whole host's."""
    await asyncio.sleep(0)
