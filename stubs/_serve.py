"""Serve stubs over HTTP on loopback (or any host): ``ecom-harness stubs serve``.

Every shipped component is hosted in-process so the served ones have their peers (a
served payment-svc still reaches Stripe), and the requested ones get a port each. A
document given by path is served from its examples alone: a simulator written for the
shipped spec would not fit someone else's.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._asgi import PortDispatcher, bind, serve_sockets
from ._backends import Backends
from ._bus import InMemoryBus
from ._host import StubHost, load_api, shipped_components, shipped_spec

__all__ = ["ServePlan", "serve_stubs"]


@dataclass(frozen=True, slots=True)
class ServePlan:
    """What to serve: shipped components by name and/or other OpenAPI files."""

    components: tuple[str, ...] = ()
    spec_files: tuple[Path, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0  # the first component's port, then +1 each; 0 picks free ports
    backends: Backends = field(default_factory=Backends)

    def served(self) -> list[str]:
        if not self.components and not self.spec_files:
            return shipped_components()
        for name in self.components:
            shipped_spec(name)  # raises SpecNotFound with the known names
        return list(self.components)


async def serve_stubs(
    plan: ServePlan, on_ready: Callable[[dict[str, str]], None], stop: asyncio.Event | None = None
) -> None:
    """Start, report ``{component: url}`` through ``on_ready``, serve until interrupted
    (or until ``stop`` is set), then stop everything it started."""
    served = plan.served()
    specs = {name: shipped_spec(name) for name in shipped_components()}
    plain: set[str] = set()
    for path in plan.spec_files:
        name = load_api(path).component
        specs[name] = path
        plain.add(name)
        served.append(name)
    sockets: list[socket.socket] = []
    host = StubHost(
        specs=specs, backends=plan.backends, bus=InMemoryBus(), examples_only=frozenset(plain)
    )
    try:
        for index, _name in enumerate(served):
            sockets.append(bind(plan.host, plan.port + index if plan.port else 0))
        await host.start()
        apps = {}
        urls = {}
        for name, sock in zip(served, sockets, strict=True):
            port = sock.getsockname()[1]
            apps[port] = host.stubs[name].app
            shown = f"[{plan.host}]" if ":" in plan.host else plan.host
            urls[name] = f"http://{shown}:{port}"
        on_ready(urls)
        await serve_sockets(PortDispatcher(apps), sockets, stop)
    finally:
        for sock in sockets:
            sock.close()
        await host.stop()
