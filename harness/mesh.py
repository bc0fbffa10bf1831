"""The mesh: every component of the topology running on loopback, each HTTP edge behind
its own recording proxy, events on one bus, everything in one journal.

A component is a hosted stub, or a real service at a URL (``real``). Callers reach
callees only through the edge proxies, so every interaction is journaled whichever side
is real. The bus is in-process by default, Kafka when ``kafka`` is ``"local"`` (a Tansu
broker started here and stopped afterwards) or ``HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ecom_harness.specs import (
    Document,
    Topology,
    load_api,
    load_topology,
    read_document,
    receiver_groups,
    senders_by_topic,
    shared_validator,
    shipped_spec,
)
from ecom_harness.stubs import (
    Backends,
    Deadlines,
    EventBus,
    InMemoryBus,
    PortDispatcher,
    Receive,
    Scope,
    Send,
    StubHost,
    bind,
    peer_client,
    serve_sockets,
    shared_tls,
)

from .addresses import PortPlan, http_url
from .broker_watch import BrokerWatch
from .faults import FaultBook
from .isolation import clear_namespace, key_shape, redis_key_prefix
from .journal import DEFAULT_BODY_LIMIT, DEFAULT_KEEP, Journal
from .peer_address import PeerApp, remembering_peer
from .proxy import RecordingProxy
from .topic_watch import GroupWatch, TopicWatch

if TYPE_CHECKING:
    from ecom_harness.stubs import TansuBroker

__all__ = ["GATEWAY", "Mesh", "MeshConfigError", "MeshOptions", "unreachable_real_services"]

GATEWAY = "api-gateway"  # the component whose limits the mesh can change


def unreachable_real_services(real: Mapping[str, str], timeout: float = 0.5) -> list[str]:
    """One warning per ``--real`` service nothing answers for (no TCP connection to its
    URL's host and port): the mesh still starts -- the service may come up later -- but
    the user hears of it now, not from the first failed call (whose journal entry names
    the address again)."""
    warnings = []
    for name, url in real.items():
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", port), timeout).close()
        except OSError:
            warnings.append(
                f"nothing answers at {url} (--real {name}): its callers will fail until it starts"
            )
    return warnings


class MeshConfigError(ValueError):
    """Options that cannot work together; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class MeshOptions:
    real: Mapping[str, str] = field(default_factory=dict)  # component -> base URL
    port_base: int | None = None
    kafka: str | None = None  # None: in-process bus; "local": Tansu; else HOST:PORT
    redis_url: str | None = None
    postgres_url: str | None = None
    host: str = "127.0.0.1"
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The journal: a file receiving the whole run (JSON Lines), the entries kept in
    # memory, the largest body journaled as itself (see journal.py).
    journal_file: Path | None = None
    journal_keep: int | None = DEFAULT_KEEP
    journal_body_limit: int = DEFAULT_BODY_LIMIT
    database_prefix: str = "ecom"  # PostgreSQL databases <prefix>_<service> (tests: unique)
    deadlines: Deadlines = field(default_factory=Deadlines)  # every timeout, one place
    # A hosted stub reaches its edges' proxies without a socket (the proxy's app called
    # in-process: same journal, same faults, a quarter less CPU per call); False: over
    # loopback TCP, as a real service does.
    in_process_edges: bool = True


class Mesh:
    """Start with ``await mesh.start()`` (or ``async with``), stop with ``await mesh.stop()``."""

    def __init__(self, options: MeshOptions | None = None, topology: Topology | None = None):
        self.options = options or MeshOptions()
        self.topology = topology or load_topology()
        self.plan = PortPlan.for_topology(self.topology, self.options.port_base)
        self.journal = Journal(
            keep=self.options.journal_keep, body_limit=self.options.journal_body_limit
        )
        self.faults = FaultBook()
        self.urls: dict[str, str] = {}  # component / "caller->callee" / "admin" -> URL
        self.bus: EventBus | None = None
        self.bootstrap_servers: str | None = None
        self.broker_watch: BrokerWatch | None = None  # with Kafka: the broker's state
        self._broker: TansuBroker | None = None  # the one started here (--kafka local)
        self.host: StubHost | None = None
        self._sockets: list[socket.socket] = []
        self._stop = asyncio.Event()
        self._server: asyncio.Task[None] | None = None
        self._fresh = False  # simulators' state new-made and untouched (_pristine)
        self._exits = contextlib.ExitStack()
        self._clients: list[httpx.AsyncClient] = []
        self.proxies: dict[str, RecordingProxy] = {}  # "caller->callee" -> its proxy
        self._group_watch: GroupWatch | None = None  # real consumers' committed offsets
        # a string shaped like a record key (the AsyncAPI key patterns): see reset()
        self._key_like: Callable[[str], bool] = lambda _: False
        self._check_options()

    # --- configuration ---

    @property
    def hosted(self) -> list[str]:
        """Components served by stubs here (every one with an HTTP API, minus real ones)."""
        return [name for name in self.plan.components if name not in self.options.real]

    def _check_options(self) -> None:
        unknown = set(self.options.real) - set(self.plan.components)
        if unknown:
            raise MeshConfigError(
                f"--real names unknown component(s): {', '.join(sorted(unknown))}"
                f" (known: {', '.join(self.plan.components)})"
            )
        if self.options.kafka is None:
            for name in self.options.real:
                channels = self.topology.kafka_channels(name)
                if channels:
                    raise MeshConfigError(
                        f"{name} publishes or consumes Kafka topics ({', '.join(channels)}), "
                        "but the in-process bus cannot be reached from another process: "
                        "add --kafka local (or --kafka HOST:PORT) to run it for real"
                    )

    def url(self, name: str) -> str:
        """The address of a component, an edge (``"caller->callee"``) or ``"admin"``."""
        return self.urls[name]

    # --- lifecycle ---

    async def start(self) -> Mesh:
        # The TLS context every client here shares reads the CA bundle (40 ms, without
        # the GIL): made in a thread while the mesh starts, not by the first request.
        tls = asyncio.ensure_future(asyncio.to_thread(shared_tls))
        try:
            if self.options.journal_file is not None:
                self.journal.stream_to(self.options.journal_file)
            await self._start_bus()
            await self._watch_topics()
            listening = self._bind()
            self.host = StubHost(
                specs={name: shipped_spec(name) for name in self.hosted},
                backends=Backends(
                    database_url=self.options.postgres_url,
                    redis_url=self.options.redis_url,
                    database_prefix=self.options.database_prefix,
                ),
                routes=self._routes(),
                in_process=self._in_process_edges(),
                bus=self.bus,
                settings=self.options.settings,
                deadlines=self.options.deadlines,
            )
            await self.host.start()
            self._fresh = self.options.postgres_url is None and self.options.redis_url is None
            if self._group_watch is not None:
                await self._group_watch.start()
            apps = self._apps(listening)
            self._server = asyncio.create_task(
                serve_sockets(PortDispatcher(apps), self._sockets, self._stop)
            )
            if self.bootstrap_servers is not None:
                restart = self._restart_broker if self._broker is not None else None
                self.broker_watch = BrokerWatch(self.bootstrap_servers, restart=restart)
                self.broker_watch.start()
        except BaseException:
            await self.stop()
            raise
        finally:
            await tls
        return self

    async def _start_bus(self) -> None:
        kafka = self.options.kafka
        if kafka is None:
            self.bus = InMemoryBus(observer=self.journal.observe_bus)
            return
        # aiokafka loads only for a mesh on Kafka: the embedded run never pays its import
        from ecom_harness.stubs import LOCAL_GROUP_TIMINGS, KafkaBus, tansu_broker

        if kafka == "local":
            self._broker = await asyncio.to_thread(
                self._exits.enter_context, tansu_broker(port=self.plan.kafka or None)
            )
            self.bootstrap_servers = self._broker.bootstrap_servers
            timings = LOCAL_GROUP_TIMINGS
        else:
            self.bootstrap_servers, timings = kafka, None
        self.bus = KafkaBus(
            self.bootstrap_servers, observer=self.journal.observe_bus, timings=timings
        )

    async def _restart_broker(self) -> None:
        """The local broker is gone: start it again on its port once its process has
        exited (its storage is in memory: it comes back empty), and reconnect the bus,
        which sends again what the lost broker had not delivered."""
        from ecom_harness.stubs import KafkaBus, tansu_broker

        assert self._broker is not None and isinstance(self.bus, KafkaBus)
        if self._broker.process.poll() is None:
            raise RuntimeError("the broker process is running but does not answer")
        await self.bus.broker_lost()  # before a new log's offsets could be mistaken for its
        self._broker = await asyncio.to_thread(
            self._exits.enter_context, tansu_broker(port=self._broker.port)
        )
        await self.bus.reconnect(lost=True)

    async def _watch_topics(self) -> None:
        """The journal's own consumer group on every topic of the broker's AsyncAPI
        document, so every publisher's events are journaled (and validated)."""
        assert self.bus is not None
        broker = next((c for c in self.topology.components.values() if c.kind == "broker"), None)
        path = self.topology.spec_path(broker) if broker is not None else None
        if path is None:
            return
        document = read_document(path)
        if not isinstance(document, Document):
            raise MeshConfigError(f"cannot read the AsyncAPI document: {document}")
        self._key_like = key_shape(document.data)
        watch = TopicWatch(self.journal, shared_validator(path), senders_by_topic(document.data))
        await watch.attach(self.bus)
        groups = receiver_groups(document.data, self.options.real)
        if groups and self.bootstrap_servers is not None:  # real consumers on a real broker
            self._group_watch = GroupWatch(self.journal, self.bootstrap_servers, groups)

    def _bind(self) -> dict[int, str]:
        """Bind every listening socket first, so all URLs are known before anything
        starts; returns port -> what listens there."""
        host, listening = self.options.host, {}
        wanted = {name: self.plan.components[name] for name in self.hosted}
        wanted |= self.plan.edges | {"admin": self.plan.admin}
        for name, port in wanted.items():
            sock = bind(host, port)
            self._sockets.append(sock)
            actual = sock.getsockname()[1]
            listening[actual] = name
            self.urls[name] = http_url(host, actual)
        self.urls |= dict(self.options.real)
        return listening

    def _routes(self) -> dict[str, dict[str, str]]:
        routes: dict[str, dict[str, str]] = {}
        for edge in self.topology.edges:
            if edge.is_http:
                routes.setdefault(edge.source, {})[edge.target] = self.urls[
                    f"{edge.source}->{edge.target}"
                ]
        return routes

    def _in_process_edges(self) -> dict[str, Any]:
        """Edge URL -> the edge's proxy app, for hosted callers to reach without a
        socket. The proxies are built after the host (they need its stubs), so each app
        looks its proxy up when called."""
        if not self.options.in_process_edges:
            return {}

        def edge_app(edge: str) -> Any:
            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                await self.proxies[edge](scope, receive, send)

            return remembering_peer(app)

        return {self.urls[edge]: edge_app(edge) for edge in self.plan.edges}

    def _apps(self, listening: dict[int, str]) -> dict[int, Any]:
        assert self.host is not None
        from .admin import admin_app

        apps: dict[int, Any] = {}
        for port, name in listening.items():
            if name == "admin":
                apps[port] = admin_app(self)
            elif "->" in name:
                apps[port] = remembering_peer(self._proxy(name))
            else:
                apps[port] = self.host.stubs[name].app
        return apps

    def _proxy(self, edge: str) -> RecordingProxy:
        assert self.host is not None
        caller, callee = edge.split("->")
        stub = self.host.stubs.get(callee)
        upstream: httpx.AsyncClient | PeerApp
        if stub is not None:
            upstream = PeerApp(stub.app, callee)  # the callee sees the caller's address
            api = stub.api
        else:
            # the caller's own timeout decides how long to wait: the proxy never cuts in
            upstream = peer_client(
                self.options.real[callee],
                timeout=None,
                deadlines=self.options.deadlines,
                verify=shared_tls(),
            )
            self._clients.append(upstream)
            api = load_api(shipped_spec(callee))
        proxy = RecordingProxy(
            caller, callee, upstream=upstream, api=api, journal=self.journal, faults=self.faults
        )
        self.proxies[edge] = proxy
        return proxy

    async def stop(self) -> None:
        """Stop everything this mesh started, by its own handles; safe to call twice."""
        self._stop.set()
        if self.broker_watch is not None:
            await self.broker_watch.stop()
        if self._group_watch is not None:
            await self._group_watch.stop()
            self._group_watch = None
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
            await self.host.stop()  # stops the bus too
            self.host = None
        elif self.bus is not None and not isinstance(self.bus, InMemoryBus):
            await self.bus.stop()
        await asyncio.to_thread(self._exits.close)  # a broker we started
        self.journal.close()  # the rest of the run to the file, if there is one

    async def __aenter__(self) -> Mesh:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- using it ---

    @property
    def entry_edge(self) -> str:
        """The end user's edge: ``client->api-gateway``."""
        edge = next(
            e for e in self.topology.edges if self.topology.components[e.source].kind == "client"
        )
        return f"{edge.source}->{edge.target}"

    @property
    def entry_url(self) -> str:
        """Where the end user comes in: the client's edge proxy to the gateway."""
        return self.url(self.entry_edge)

    def client(self, **headers: str) -> httpx.AsyncClient:
        """The end user's client: reaches the gateway through the client's edge proxy,
        waiting as long as the deadlines say the gateway may take."""
        client = httpx.AsyncClient(
            base_url=self.entry_url,
            headers=headers,
            verify=shared_tls(),
            # longer than the gateway can take (never httpx's 5 s): timeouts nest
            timeout=self.options.deadlines.edge("client", "api-gateway"),
        )
        self._clients.append(client)
        return client

    async def reset(self) -> None:
        """Between scenarios: every simulator forgets its state, every real service's
        Redis namespace is emptied, the faults clear and the journal starts afresh,
        remembering the record keys (order ids) the last scenario named, so what a real
        service does late for it is told apart in the next (``Journal.retire``)."""
        if self.host is not None and not self._pristine():
            await self.host.reset()
        self._fresh = False
        for prefix in self.redis_namespaces():
            assert self.options.redis_url is not None
            await clear_namespace(self.options.redis_url, prefix)
        self.journal.retire(self._key_like)
        self.faults.clear()

    def _pristine(self) -> bool:
        """Whether the simulators' state is as :meth:`start` made it, so a reset has
        nothing to forget: their databases and cache were made empty at start (SQLite,
        fakeredis: not a server that outlives the mesh) and nothing has been journaled
        since (every request and event through the mesh is)."""
        journal = self.journal
        return self._fresh and not (journal.entries() or journal.written or journal.dropped)

    def redis_namespaces(self) -> list[str]:
        """The key prefixes ``env`` gives the real services that use Redis (what the
        mesh may empty: nothing else in the user's database, see isolation.py)."""
        base = self.options.port_base
        if self.options.redis_url is None or base is None:
            return []
        return [
            redis_key_prefix(base, name)
            for name in self.options.real
            if any(e.protocol == "redis" for e in self.topology.edges_from(name))
        ]

    async def seed(self, component: str, data: Any) -> None:
        """Hand ``data`` to the component simulator's ``seed`` (stock, products...)."""
        stub = self.host.stubs.get(component) if self.host else None
        seed = getattr(stub.simulator, "seed", None) if stub else None
        if seed is None:
            raise MeshConfigError(f"{component} cannot be seeded (no simulator with seed())")
        await seed(data)

    def _gateway(self) -> Any:
        """The gateway simulator (its limits are settable), or MeshConfigError."""
        stub = self.host.stubs.get(GATEWAY) if self.host else None
        simulator = stub.simulator if stub else None
        if simulator is None or not hasattr(simulator, "configure"):
            raise MeshConfigError(f"{GATEWAY} is a real service in this mesh; set its limits there")
        return simulator

    def gateway_limits(self) -> dict[str, Any]:
        """The gateway's rate limits, trusted proxies and admission (``rate_limit``,
        ``ip_rate_limit``, ``trusted_proxies``, ``max_in_flight``, ``queue_timeout``)."""
        limits: dict[str, Any] = self._gateway().limits()
        return limits

    def set_gateway_limits(self, **changes: Any) -> dict[str, Any]:
        """Change some of :meth:`gateway_limits` on the running gateway; ValueError for a
        value it cannot use (nothing changes then)."""
        self._gateway().configure(**changes)
        return self.gateway_limits()
