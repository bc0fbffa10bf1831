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

from ecom_harness.specs import (
    Api,
    Diagnostic,
    Document,
    lint_document,
    load_api,
    read_document,
    shipped_components,
    shipped_spec,
)
from ecom_harness.stubs.engine import PortDispatcher, StubApp, StubEngine, bind, serve_sockets
from ecom_harness.stubs.state import Backends

if TYPE_CHECKING:
    from ._host import StubHost

__all__ = ["ServeConflict", "ServePlan", "example_problems", "serve_stubs"]


class ServeConflict(ValueError):
    """One component would be served twice."""


@dataclass(frozen=True, slots=True)
class ServePlan:
    """What to serve: shipped components by name and/or other OpenAPI files."""

    components: tuple[str, ...] = ()
    spec_files: tuple[Path, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0  # the first component's port, then +1 each; 0 picks free ports
    backends: Backends = field(default_factory=Backends)
    strict: bool = False  # refuse a document whose examples break it (else serve them)

    def served(self) -> list[str]:
        if not self.components and not self.spec_files:
            return shipped_components()
        for name in self.components:
            shipped_spec(name)  # raises SpecNotFound with the known names
        return list(self.components)

    def all_served(self) -> list[str]:
        """Every name that gets a port, shipped and by path; one served twice (named
        twice, or a document for a component also named) is refused: two servers
        behind one row of the address table would hide one of them."""
        names = self.served() if self.components or not self.spec_files else []
        seen: dict[str, str] = {}
        for name in names:
            if name in seen:
                raise ServeConflict(f"component '{name}' is named twice")
            seen[name] = "named"
        for path in self.spec_files:
            name = load_api(path).component
            if name in seen:
                raise ServeConflict(
                    f"--spec {path} serves '{name}', which is also {seen[name]}: "
                    "it would be served twice"
                )
            seen[name] = f"served by --spec {path}"
        return list(seen)


def example_problems(path: Path) -> list[Diagnostic]:
    """The places where a document's examples break their own schemas."""
    document = read_document(path)
    if not isinstance(document, Document):
        return []
    lint_document(document)
    return [d for d in document.diagnostics if d.rule == "example-invalid"]


def _check_examples(plan: ServePlan, on_warning: Callable[[str], None] | None) -> None:
    """One warning line per document whose examples break it (served anyway, with an
    ``sl-violations`` header); with ``plan.strict`` a ValueError instead."""
    for path in plan.spec_files:
        found = example_problems(path)
        if not found:
            continue
        examples = len({d.pointer.split("/value", 1)[0] for d in found})
        if plan.strict:
            raise ValueError(
                f"{path}: {examples} example(s) break their own schema "
                f"(first: {found[0].pointer}: {found[0].message})"
            )
        if on_warning is not None:
            on_warning(
                f"{path}: {examples} example(s) break their own schema "
                f"({len(found)} violation(s)); served as written, "
                "each answer naming its violations in an sl-violations header "
                "(--strict refuses instead)"
            )


async def serve_stubs(
    plan: ServePlan,
    on_ready: Callable[[dict[str, str]], None],
    stop: asyncio.Event | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> None:
    """Start, report ``{component: url}`` through ``on_ready``, serve until interrupted
    (or until ``stop`` is set), then stop everything it started. A document given by
    path whose examples break it is served anyway (``on_warning`` hears of it once)
    unless ``plan.strict``."""
    plan.all_served()
    _check_examples(plan, on_warning)
    plain = _plain_apis(plan.spec_files)
    served = [*plan.served(), *plain] if plan.components or not plain else list(plain)
    sockets: list[socket.socket] = []
    host = _shipped_host(plan, plain) if len(served) > len(plain) else None
    try:
        for index, _name in enumerate(served):
            sockets.append(bind(plan.host, plan.port + index if plan.port else 0))
        if host is not None:
            await host.start()
        engines = {
            name: StubApp(StubEngine(api, lenient_examples=True)) for name, api in plain.items()
        }
        apps = {}
        urls = {}
        for name, sock in zip(served, sockets, strict=True):
            port = sock.getsockname()[1]
            apps[port] = engines[name] if name in engines else _hosted(host, name)
            shown = f"[{plan.host}]" if ":" in plan.host else plan.host
            urls[name] = f"http://{shown}:{port}"
        on_ready(urls)
        await serve_sockets(PortDispatcher(apps), sockets, stop)
    finally:
        for sock in sockets:
            sock.close()
        if host is not None:
            await host.stop()


def _hosted(host: StubHost | None, name: str) -> StubApp:
    assert host is not None  # shipped components are served only with a host
    return host.stubs[name].app


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
