"""What a component simulator is, and what it is given.

A simulator is the stateful behaviour of one component, keyed by operationId. It owns
its tables (in its own database), may use the cache, the event bus and its peers (the
components it calls, reached through ``peers``: in-process ASGI transports by default,
URLs -- through the mesh's recording proxies -- when wired by the harness).

Simulators answer with :class:`StubResponse` data; the engine checks every answer
against the spec, so a simulator cannot drift from its contract unnoticed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import redis.asyncio as aioredis
from sqlalchemy import Connection, MetaData, Table, inspect, select, text
from sqlalchemy.schema import CreateColumn

from ecom_harness.specs import Api
from ecom_harness.stubs.engine import (
    PROBLEM_MEDIA_TYPE,
    Behaviour,
    ErrorRenderer,
    Problem,
    StubRequest,
    StubResponse,
    ValidRequest,
)
from ecom_harness.stubs.state import Connection as DbConnection
from ecom_harness.stubs.state import Database, insert_into

from ._deadlines import Deadlines

__all__ = [
    "Peers",
    "SeedError",
    "Simulator",
    "SimulatorContext",
    "add_missing_rows",
    "health_behaviour",
    "json_response",
    "not_found",
    "problem_response",
    "render_problem",
    "rfc3339",
    "utc_now",
]


class SeedError(ValueError):
    """Seed data a simulator cannot use, said in the component's words; ``pointer`` is
    where in the data (RFC 6901, from the data's root)."""

    def __init__(self, pointer: str, message: str):
        super().__init__(message)
        self.pointer = pointer


def utc_now() -> datetime:
    return datetime.now(UTC)


class Peers:
    """HTTP clients for the components a simulator calls, by component name."""

    def __init__(self, clients: Mapping[str, httpx.AsyncClient] | None = None):
        self._clients = dict(clients or {})

    def add(self, clients: Mapping[str, httpx.AsyncClient]) -> None:
        self._clients.update(clients)

    def __contains__(self, name: str) -> bool:
        return name in self._clients

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        try:
            return self._clients[name]
        except KeyError:
            known = ", ".join(sorted(self._clients)) or "none"
            raise LookupError(f"no route to '{name}' (peers: {known})") from None


@dataclass(slots=True)
class SimulatorContext:
    """Everything a simulator may use; built by the stub host, one per component."""

    component: str
    api: Api
    db: Database
    redis: aioredis.Redis
    peers: Peers = field(default_factory=Peers)
    bus: Any = None  # an EventBus (stubs._bus) when the component publishes or consumes
    settings: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], datetime] = utc_now
    # every timeout between components, in one place (see _deadlines)
    deadlines: Deadlines = field(default_factory=Deadlines)


class Simulator:
    """Base class: subclasses set ``component`` and ``metadata`` and map operationIds to
    coroutine methods in :meth:`behaviours`."""

    component: ClassVar[str]
    metadata: ClassVar[MetaData] = MetaData()

    def __init__(self, ctx: SimulatorContext):
        self.ctx = ctx

    def behaviours(self) -> dict[str, Behaviour]:
        """operationId -> coroutine answering it; unlisted operations answer from examples."""
        return {}

    def render_error(self) -> ErrorRenderer | None:
        """Override to answer the engine's own errors in the component's wire format."""
        return None

    async def start(self) -> None:
        """Create the component's tables (in its own database) and subscribe to topics."""
        async with self.ctx.db.begin() as conn:
            await conn.run_sync(self.metadata.create_all)
            await conn.run_sync(upgrade_schema, self.metadata)

    async def stop(self) -> None:
        """Release what :meth:`start` took (subscriptions, background tasks)."""

    async def reset(self) -> None:
        """Forget all state: every row of every table, and the component's cache keys."""
        async with self.ctx.db.begin() as conn:
            for table in reversed(self.metadata.sorted_tables):
                await conn.execute(table.delete())


def upgrade_schema(conn: Connection, metadata: MetaData) -> None:
    """Add the columns and indexes a newer version defines to tables an older one made.

    A PostgreSQL database outlives the process (``--postgres``): ``create_all`` makes
    missing tables only, so a column added since (``idempotency_keys.created_at``, issue
    15) would be missing there, and so would an index added since (the reservations'
    sweep index). Every such column is nullable, so rows made before it simply hold
    NULL."""
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                definition = CreateColumn(column).compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN {definition}'))
        indexed = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexed:
                index.create(conn)


async def add_missing_rows(
    conn: DbConnection, table: Table, rows: list[dict[str, Any]], key: str
) -> None:
    """Insert those of ``rows`` whose ``key`` the table does not hold yet.

    The seed data's history (its orders, their payments, reservations...) is written at
    every start. A PostgreSQL database keeps it from the run before (README: state
    persists across restarts), where inserting it again broke the unique keys and the
    second start with it."""
    column = table.c[key]
    wanted = [row[key] for row in rows]
    held = set((await conn.scalars(select(column).where(column.in_(wanted)))).all())
    missing = [row for row in rows if row[key] not in held]
    if missing:
        await conn.execute(insert_into(table), missing)


def render_problem(found: Problem, request: StubRequest) -> StubResponse:
    """An engine error as the platform's problem+json (a rejected request is 422 in every
    component: specs/CONVENTIONS.md)."""
    return StubResponse(
        found.status, found.body(request.path), PROBLEM_MEDIA_TYPE, dict(found.headers)
    )


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> StubResponse:
    """A JSON answer."""
    return StubResponse(status, body, "application/json", dict(headers or {}))


def problem_response(
    status: int,
    slug: str,
    *,
    title: str,
    detail: str,
    instance: str,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> StubResponse:
    """An RFC 9457 problem in the platform's convention (see specs/CONVENTIONS.md)."""
    body = Problem(slug, status, title, detail).body(instance) | extensions
    return StubResponse(status, body, PROBLEM_MEDIA_TYPE, dict(headers or {}))


def health_behaviour(component: str) -> Behaviour:
    """``getHealth``: a simulator that answers at all is up."""

    async def health(_req: ValidRequest) -> StubResponse:
        return json_response(200, {"status": "ok", "component": component})

    return health


def rfc3339(moment: datetime) -> str:
    """``2025-03-11T09:15:05Z``: whole seconds in UTC, as the specs' examples write times.
    Written once per second: under load the mesh stamps thousands of rows a second, and
    formatting each one anew was 1% of its loop (issue 15)."""
    return _second_text(math.floor(moment.timestamp()))


@functools.lru_cache(maxsize=16)
def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z")


def not_found(req: ValidRequest, what: str) -> StubResponse:
    """The platform's 404 problem for ``what`` (``"Order ord_1"``) that does not exist."""
    return problem_response(
        404,
        "not-found",
        title="Not Found",
        detail=f"{what} does not exist.",
        instance=req.request.path,
    )
