"""What every service of the corpus shares, as a team's small in-house library would:
reading the environment ``ecom-harness env`` prints, problem+json answers, ids and
times, the service-token check, the database engine, a Kafka producer that waits for
its broker, and serving on ``$PORT``.

Nothing here imports ecom-harness: these services know the platform only from its
specs (``specs/openapi``, ``specs/asyncapi``, ``specs/CONVENTIONS.md``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.engine import make_url
from sqlalchemy.event import listens_for
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "EventProducer",
    "Handler",
    "Problem",
    "database_engine",
    "event",
    "fingerprint",
    "health",
    "new_id",
    "now",
    "problem",
    "require_service_token",
    "serve",
    "within_shutdown",
]

logger = logging.getLogger("real_services")

PROBLEM_TYPES = "https://errors.example.com/ecom/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
EVENT_SCHEMA_VERSION = 1
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """``ord_`` + 16 letters and digits (CONVENTIONS.md: ``^<prefix>_[A-Za-z0-9]{8,32}$``)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def now() -> str:
    """An RFC 3339 timestamp, UTC, second precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(body: Any) -> str:
    """Stable digest of a JSON body, to tell a retried request from a different one."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Problem(Exception):
    """An RFC 9457 answer raised from anywhere in a handler."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, instance: str) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPES + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }

    def response(self, instance: str) -> JSONResponse:
        return JSONResponse(
            self.body(instance),
            self.status,
            headers=self.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )


def problem(request: Request, failure: Problem) -> JSONResponse:
    return failure.response(request.url.path)


Handler = Callable[[Request], Awaitable[Response]]


def require_service_token(handler: Handler) -> Handler:
    """Internal APIs answer 401 to a caller without ``X-Service-Token`` (CONVENTIONS.md)."""

    async def checked(request: Request) -> Response:
        if not request.headers.get("x-service-token"):
            return problem(
                request,
                Problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "The X-Service-Token header is missing or not valid.",
                ),
            )
        try:
            return await handler(request)
        except Problem as failure:
            return problem(request, failure)

    return checked


def health(component: str) -> Handler:
    async def answer(_: Request) -> Response:
        return JSONResponse({"status": "ok", "component": component})

    return answer


def database_engine(url: str) -> AsyncEngine:
    """An async engine on ``$DATABASE_URL`` (``sqlite:///file.db`` or ``postgresql://...``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed.set(drivername="postgresql+psycopg"))
    engine = create_async_engine(parsed.set(drivername="sqlite+aiosqlite"))

    @listens_for(engine.sync_engine, "connect")
    def tune(connection: Any, _: Any) -> None:
        """A write-ahead log, synced at checkpoints: commits no longer wait for the disk."""
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def event(event_type: str, source: str, order_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The envelope every record on the platform's topics carries (commerce-events.yaml)."""
    return {
        "id": new_id("evt"),
        "type": event_type,
        "source": source,
        "time": now(),
        "schema_version": EVENT_SCHEMA_VERSION,
        "order_id": order_id,
        "data": data,
    }


class EventProducer:
    """A Kafka producer that connects in the background: the service is started before
    the platform's broker may be up, so connecting retries until it succeeds, and a
    publish waits (up to ``ready_within`` seconds) for the connection."""

    def __init__(self, bootstrap_servers: str, client_id: str, ready_within: float = 20.0):
        self.bootstrap_servers, self.client_id = bootstrap_servers, client_id
        self.ready_within = ready_within
        self._producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._connecting = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
            )
            try:
                await producer.start()
            except (KafkaError, OSError):
                await producer.stop()
                await asyncio.sleep(0.2)
                continue
            self._producer = producer
            self._ready.set()
            return

    async def connected(self) -> None:
        """Return once the producer is connected (the service is ready only then)."""
        await self._ready.wait()

    async def publish(self, topic: str, key: str, value: dict[str, Any]) -> None:
        await asyncio.wait_for(self._ready.wait(), self.ready_within)
        assert self._producer is not None
        await self._producer.send_and_wait(
            topic, json.dumps(value).encode(), key=key.encode() if key else None
        )

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._producer is not None:
            await within_shutdown(self._producer.stop())


SHUTDOWN_S = 2.0  # a broker that went away first must not hold up our exit


async def within_shutdown(closing: Awaitable[Any]) -> None:
    """Close a Kafka client, giving up after :data:`SHUTDOWN_S` (flushing or leaving the
    group waits for a broker that may be gone)."""
    with suppress(TimeoutError, KafkaError, OSError):
        await asyncio.wait_for(closing, SHUTDOWN_S)


def serve(app: ASGIApp, port: int) -> None:
    """Serve on loopback until SIGTERM/SIGINT (uvicorn's own handlers stop it cleanly)."""
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
