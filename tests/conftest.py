"""Shared fixtures."""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import shutil
import socket
import tempfile
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ecom_harness.harness.addresses import PortPlan
from ecom_harness.specs import load_topology
from ecom_harness.stubs import Backends, Exchange, StubHost

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """The suite's parsed-YAML cache (specs/_parse_cache.py) lives in a folder of its own,
    for this process and every CLI it starts, not in the user's ~/.cache."""
    if "ECOM_HARNESS_CACHE_DIR" not in os.environ:
        os.environ["ECOM_HARNESS_CACHE_DIR"] = tempfile.mkdtemp(prefix="ecom-harness-cache-")


@pytest.fixture(scope="session")
def package_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shaped like the installed package (``ecom_harness/stubs/...``), made of
    symlinks into the repo, built from the ``package-dir`` mapping in pyproject.toml.

    Tools that walk the file system instead of importing (mypy, import-linter's grimp)
    cannot follow setuptools' editable finder; this tree shows them the real layout.
    """
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    root = tmp_path_factory.mktemp("package-tree")
    for package, folder in sorted(mapping.items()):
        parent = package.rpartition(".")[0]
        if (
            parent in mapping
            and parent != "ecom_harness"
            and (REPO / folder).parent == REPO / mapping[parent]
        ):
            continue  # already inside its parent's linked folder
        target = root.joinpath(*package.split("."))
        target.parent.mkdir(parents=True, exist_ok=True)
        if package == "ecom_harness":
            target.mkdir(exist_ok=True)
            for item in (REPO / folder).iterdir():
                (target / item.name).symlink_to(item)
        else:
            target.symlink_to(REPO / folder, target_is_directory=True)
    return root


@pytest.fixture
def spec_copy(tmp_path: Path) -> Iterator[Path]:
    """A writable copy of the shipped specs, for tests that break one thing in it."""
    target = tmp_path / "specs"
    shutil.copytree(
        REPO / "specs",
        target,
        ignore=shutil.ignore_patterns("*.py", "*.md", "lint", "__pycache__"),
    )
    yield target


# --- backends: every simulator test runs on the embedded defaults and on real servers ---

POSTGRES_URL = os.environ.get("ECOM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ECOM_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["embedded", "real"])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[Backends]:
    """SQLite + fakeredis, or PostgreSQL (one database per service, under a prefix unique
    to this test, dropped afterwards) + Redis (db 15, emptied before and after)."""
    if request.param == "embedded":
        yield Backends()
        return
    prefix = f"ecomtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    # The test Redis database is emptied around each test: one test process at a time.
    with (Path(tempfile.gettempdir()) / "ecom-harness-test-redis.lock").open("w") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        client = aioredis.Redis.from_url(REDIS_URL)
        await client.flushdb()
        try:
            yield Backends(database_url=POSTGRES_URL, redis_url=REDIS_URL, database_prefix=prefix)
        finally:
            await client.flushdb()
            await client.aclose()
            await drop_databases(POSTGRES_URL, prefix)
            fcntl.flock(lock, fcntl.LOCK_UN)


async def drop_databases(url: str, prefix: str) -> None:
    """Drop the databases a test created (those named with its own prefix)."""
    admin = create_async_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as conn:
            names = (
                (
                    await conn.execute(
                        text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                        {"p": prefix + "%"},
                    )
                )
                .scalars()
                .all()
            )
            for name in names:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def host_factory(backends: Backends) -> AsyncIterator[Callable[..., Awaitable[StubHost]]]:
    """Start a StubHost of shipped components on the parametrized backends; every host
    it started is stopped afterwards by its own handle.

    Every exchange of every hosted stub is watched: a simulator answer that broke its
    spec (the engine's 500 stub-contract-violation) fails the test, whatever the test
    itself asserted -- so every behaviour's every response passes the response validator.
    """
    started: list[StubHost] = []
    violations: list[str] = []

    def watch(component: str, exchange: Exchange) -> None:
        body = exchange.response.body
        if isinstance(body, dict) and str(body.get("type", "")).endswith(
            "/stub-contract-violation"
        ):
            violations.append(
                f"{component} {exchange.request.method} "
                f"{exchange.request.path}: {body.get('errors')}"
            )

    async def start(components: list[str], **options: Any) -> StubHost:
        recorder = options.pop("recorder", None)

        def record(component: str, exchange: Exchange) -> None:
            watch(component, exchange)
            if recorder is not None:
                recorder(component, exchange)

        # A simulator tested on its own starts without the seed's order history (one
        # confirmed order in each service): its tests reason from an empty history. The
        # mesh, the stub server and tests/test_spec_examples.py keep the history.
        settings = {name: dict(values) for name, values in options.pop("settings", {}).items()}
        for name in components:
            settings.setdefault(name, {}).setdefault("seed_orders", False)
        host = StubHost.shipped(
            components, backends=backends, recorder=record, settings=settings, **options
        )
        started.append(host)
        return await host.start()

    yield start
    for host in reversed(started):
        await host.stop()
    assert not violations, "simulator answers broke their specs:\n" + "\n".join(violations)


def asgi_client(host: StubHost, component: str, **headers: str) -> httpx.AsyncClient:
    """A client that talks to one hosted stub in-process (no socket)."""
    transport = httpx.ASGITransport(app=host.stubs[component].app)
    return httpx.AsyncClient(transport=transport, base_url=f"http://{component}", headers=headers)


# --- fixed mesh ports: port bases whose whole plan is free --------------------------------

TOPOLOGY = load_topology()
# Below Linux's ephemeral range (32768+), so outgoing connections do not take our ports.
PORT_BASES = range(20000, 32400, 150)


def plan_for(base: int) -> PortPlan:
    return PortPlan.for_topology(TOPOLOGY, base)


def plan_ports(plan: PortPlan) -> list[int]:
    return [*plan.components.values(), *plan.edges.values(), plan.admin, plan.kafka]


def is_free(port: int) -> bool:
    """Whether a new listener could bind the port (with SO_REUSEADDR, as the mesh does,
    so connections lingering in TIME_WAIT do not count)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_base() -> int:
    """A port base whose whole plan is free right now; picked at random, so parallel
    runs rarely try the same one."""
    for base in random.sample(PORT_BASES, len(PORT_BASES)):
        if all(is_free(port) for port in plan_ports(plan_for(base))):
            return base
    raise RuntimeError("no free port range for a mesh")
