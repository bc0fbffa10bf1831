"""Serve stubs over HTTP on loopback (or any host): ``ecom-harness stubs serve``.

When shipped components are served, every shipped component is hosted in-process so the
served ones have their peers (a served payment-svc still reaches Stripe), and the
requested ones get a port each. A document given by path is served from its examples
alone: a simulator written for the shipped spec would not fit someone else's. Given only
documents by path, nothing else is loaded -- no simulators, databases or bus -- so a
user's own spec answers within a fraction of a second of starting.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ecom_harness.specs import Api, load_api, shipped_components, shipped_spec
from ecom_harness.stubs.engine import PortDispatcher, StubApp, StubEngine, bind, serve_sockets
from ecom_harness.stubs.state import Backends

if TYPE_CHECKING:
    from ._host import StubHost

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
    plain = _plain_apis(plan.spec_files)
    served = [*plan.served(), *plain] if plan.components or not plain else list(plain)
    sockets: list[socket.socket] = []
    host = _shipped_host(plan, plain) if len(served) > len(plain) else None
    try:
        for index, _name in enumerate(served):
            sockets.append(bind(plan.host, plan.port + index if plan.port else 0))
        if host is not None:
            await host.start()
        engines = {} if host else {name: StubApp(StubEngine(api)) for name, api in plain.items()}
        apps = {}
        urls = {}
        for name, sock in zip(served, sockets, strict=True):
            port = sock.getsockname()[1]
            apps[port] = host.stubs[name].app if host is not None else engines[name]
            shown = f"[{plan.host}]" if ":" in plan.host else plan.host
            urls[name] = f"http://{shown}:{port}"
        on_ready(urls)
        await serve_sockets(PortDispatcher(apps), sockets, stop)
    finally:
        for sock in sockets:
            sock.close()
        if host is not None:
            await host.stop()


def _plain_apis(paths: tuple[Path, ...]) -> dict[str, Api]:
    """The documents given by path, by component name; two for one name are refused."""
    apis: dict[str, Api] = {}
    for path in paths:
        api = load_api(path)
        if api.component in apis:
            raise ValueError(f"{path}: component '{api.component}' is given twice")
        apis[api.component] = api
    return apis


def _shipped_host(plan: ServePlan, plain: dict[str, Api]) -> StubHost:
    """Every shipped component in-process (the served ones need their peers), plus the
    documents given by path, served from their examples."""
    from ecom_harness.stubs.events import InMemoryBus

    from ._host import StubHost

    specs = {name: shipped_spec(name) for name in shipped_components()}
    specs |= {name: path for name, path in zip(plain, plan.spec_files, strict=True)}  # same order
    return StubHost(
        specs=specs,
        backends=plan.backends,
        bus=InMemoryBus(),
        examples_only=frozenset(plain),
    )
