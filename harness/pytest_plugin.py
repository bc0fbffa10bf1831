"""The ecom-harness pytest plugin (entry point ``pytest11``): the platform's stubs in
another team's test suite.

- ``ecom_mesh`` (session): the whole mesh on loopback, started once; or, with
  ``--ecom-stubs order-svc,payment-svc`` (ini ``ecom_stubs``), only those stubs, each
  behind a recording proxy. It yields their addresses (``urls``, ``url(name)``).
- ``ecom_stub``: ``ecom_stub("order-svc")`` -> that one stub's address and a client
  (in the whole mesh, the component's own address: the test's direct calls to it are
  not journaled, its onward calls are; with ``--ecom-stubs``, its recording proxy).
- ``@pytest.mark.ecom_fault(EDGE, kind=..., ...)``: a fault on an edge for one test
  (``"order-svc->inventory-svc"`` in the mesh; with ``--ecom-stubs``, the stub's name),
  cleared after it. Fields as in the admin API: ``kind`` delay|timeout|error|reset,
  ``delay_ms``, ``status``, ``body``, ``times``.
- ``ecom_journal``: the journal, emptied before the test, to assert on.

Everything runs on a private event loop thread, so sync and async tests alike can use
it; everything the plugin started it stops at the end of the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the plugin loads in every pytest run: import the mesh only when used
    import httpx

    from ecom_harness.stubs.exporters import BackgroundLoop

    from .faults import FaultBook
    from .journal import Interaction, Journal
    from .mesh import Mesh
    from .stub_server import StubServer

__all__ = ["EcomServices", "StubAddress"]

MARKER = "ecom_fault"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ecom-harness")
    group.addoption(
        "--ecom-stubs",
        metavar="NAMES",
        help="ecom_mesh serves only these stubs (comma-separated), not the whole mesh",
    )
    parser.addini("ecom_stubs", "ecom_mesh serves only these stubs (comma-separated)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(edge, kind, **fields): a fault on an ecom-harness edge for this test",
    )


class EcomServices:
    """The running mesh (or chosen stubs), driven from synchronous test code."""

    def __init__(self, loop: BackgroundLoop, running: Mesh | StubServer):
        self._loop, self.running = loop, running

    @property
    def urls(self) -> dict[str, str]:
        return dict(self.running.urls)

    def url(self, name: str) -> str:
        """A component's address (and in the mesh, an edge's or ``"admin"``)."""
        return self.running.url(name)

    @property
    def journal(self) -> Journal:
        return self.running.journal

    @property
    def faults(self) -> FaultBook:
        return self.running.faults

    @property
    def entry_url(self) -> str:
        """Where to drive the platform from: the mesh's client edge to the gateway; with
        chosen stubs, the first one's address."""
        from .mesh import Mesh

        if isinstance(self.running, Mesh):
            return self.running.entry_url
        return next(iter(self.running.urls.values()))

    def edge(self, name: str) -> str:
        """An edge name as faults take it; with chosen stubs a bare component name means
        the test's own edge to it."""
        from .stub_server import StubServer

        if isinstance(self.running, StubServer) and "->" not in name:
            return StubServer.edge(name)
        return name

    def edges(self) -> list[str]:
        from .stub_server import StubServer

        if isinstance(self.running, StubServer):
            return [StubServer.edge(n) for n in self.running.urls]
        return list(self.running.plan.edges)

    def reset(self) -> None:
        """Every simulator forgets its state; journal and faults clear."""
        self._loop.run(self.running.reset())

    def stop(self) -> None:
        try:
            self._loop.run(self.running.stop())
        finally:
            self._loop.close()


@dataclass(slots=True)
class StubAddress:
    """One stub as a test sees it."""

    name: str
    url: str
    services: EcomServices
    _clients: list[httpx.Client]

    def client(self, **headers: str) -> httpx.Client:
        """An ``httpx.Client`` on this stub (closed after the test)."""
        import httpx

        client = httpx.Client(base_url=self.url, headers=headers)
        self._clients.append(client)
        return client

    def interactions(self) -> list[Interaction]:
        """Journaled exchanges with this stub, on any edge into it."""
        return [i for i in self.services.journal.interactions() if i.callee == self.name]


def _chosen(config: pytest.Config) -> list[str]:
    raw = config.getoption("--ecom-stubs") or config.getini("ecom_stubs") or ""
    return [name.strip() for name in str(raw).split(",") if name.strip()]


def _start(chosen: list[str]) -> EcomServices:
    from ecom_harness.specs import shipped_components, shipped_spec
    from ecom_harness.stubs.exporters import BackgroundLoop

    from .mesh import Mesh
    from .stub_server import StubServer, StubServerOptions

    running: Mesh | StubServer
    if chosen:
        unknown = [n for n in chosen if n not in shipped_components()]
        if unknown:
            raise pytest.UsageError(
                f"--ecom-stubs: unknown component(s) {', '.join(unknown)} "
                f"(known: {', '.join(shipped_components())})"
            )
        specs = {name: shipped_spec(name) for name in shipped_components()}
        running = StubServer(StubServerOptions(served=tuple(chosen), specs=specs))
    else:
        running = Mesh()
    loop = BackgroundLoop("ecom-harness-pytest")
    try:
        loop.run(running.start())
    except BaseException:
        loop.close()
        raise
    return EcomServices(loop, running)


@pytest.fixture(scope="session")
def ecom_mesh(pytestconfig: pytest.Config) -> Iterator[EcomServices]:
    """The mesh (or the ``--ecom-stubs``), started once for the session."""
    services = _start(_chosen(pytestconfig))
    try:
        yield services
    finally:
        services.stop()


@pytest.fixture
def ecom_stub(ecom_mesh: EcomServices) -> Iterator[Callable[[str], StubAddress]]:
    """``ecom_stub("order-svc")``: one stub's address, and clients on it."""
    clients: list[httpx.Client] = []

    def address(name: str) -> StubAddress:
        if name not in ecom_mesh.urls:
            raise LookupError(f"no stub '{name}' is running (running: {', '.join(ecom_mesh.urls)})")
        return StubAddress(name, ecom_mesh.url(name), ecom_mesh, clients)

    yield address
    for client in clients:
        client.close()


@pytest.fixture
def ecom_journal(ecom_mesh: EcomServices) -> Journal:
    """The journal, emptied before this test."""
    ecom_mesh.journal.clear()
    return ecom_mesh.journal


@pytest.fixture(autouse=True)
def _ecom_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Arms each ``ecom_fault`` marker of the test, and clears it afterwards."""
    markers = list(request.node.iter_markers(MARKER))
    if not markers:
        yield
        return
    from .faults import Fault, FaultError

    services: EcomServices = request.getfixturevalue("ecom_mesh")
    armed = []
    for marker in markers:
        if len(marker.args) not in (1, 2):
            pytest.fail(f"{MARKER} takes the edge (and optionally the kind): {marker}")
        edge = services.edge(str(marker.args[0]))
        if edge not in services.edges():
            pytest.fail(f"{MARKER}: no edge '{edge}' (edges: {', '.join(services.edges())})")
        fields: dict[str, Any] = dict(marker.kwargs)
        if len(marker.args) == 2:
            fields["kind"] = marker.args[1]
        try:
            services.faults.set(edge, Fault.from_dict(fields))
        except FaultError as exc:
            pytest.fail(f"{MARKER}({edge!r}): {exc}")
        armed.append(edge)
    try:
        yield
    finally:
        for edge in armed:
            services.faults.clear(edge)
