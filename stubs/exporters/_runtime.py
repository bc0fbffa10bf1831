"""What the ``responses`` and ``httpx`` exports run on: stubs hosted in-process, with no
socket, answering one request at a time from synchronous code.

The engine and the simulators are asynchronous (their databases, the event
bus), and a client under test may be synchronous (``requests``) or run its own event
loop (``httpx.AsyncClient``). So the stubs get a private event loop on a daemon thread,
and :meth:`LocalStubs.handle` hands each request over and waits for the answer: the
caller's loop, if any, is never shared.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson

from ecom_harness.specs import MessageValidator
from ecom_harness.stubs import StubHost
from ecom_harness.stubs.engine import StubRequest, StubResponse
from ecom_harness.stubs.events import InMemoryBus

__all__ = ["BackgroundLoop", "LocalStubs", "encode_body"]

T = TypeVar("T")


def encode_body(response: StubResponse) -> bytes:
    """A stub's answer as bytes on the wire: JSON as JSON, text as UTF-8."""
    if response.body is None:
        return b""
    if isinstance(response.body, str) and not (response.media_type or "").endswith("json"):
        return response.body.encode()
    return orjson.dumps(response.body)


class BackgroundLoop:
    """An event loop on a daemon thread, for synchronous callers of asynchronous stubs
    (and for callers with a loop of their own, which is never shared)."""

    def __init__(self, name: str = "ecom-harness-stubs"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (or exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class LocalStubs:
    """Component stubs (simulators where the component has one) on a private loop.

    ``specs`` maps component name -> OpenAPI file; every one is hosted, so a component's
    simulator reaches its peers in-process. Events are checked against ``asyncapi``
    (default: the shipped document). Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        specs: Mapping[str, Path],
        *,
        asyncapi: Path | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        examples_only: bool = False,
    ):
        self.host = StubHost(
            specs=dict(specs),
            settings=dict(settings or {}),
            bus=InMemoryBus(validator=MessageValidator.load(asyncapi)),
            examples_only=frozenset(specs) if examples_only else frozenset(),
        )
        self._loop: BackgroundLoop | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "LocalStubs not started"
        return self._loop.run(coro)

    def start(self) -> LocalStubs:
        if self._loop is not None:
            return self
        self._loop = BackgroundLoop("ecom-harness-local-stubs")
        try:
            self._run(self.host.start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the stubs and the loop they run on; safe to call twice."""
        if self._loop is None:
            return
        try:
            self._run(self.host.stop())
        finally:
            self._loop.close()
            self._loop = None

    def reset(self) -> None:
        """Every simulator forgets its state (between tests)."""
        self._run(self.host.reset())

    def handle(
        self,
        component: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | str | None,
    ) -> StubResponse:
        """Answer one request to ``component``; ``url`` may be absolute or a path."""
        parts = urlsplit(url)
        raw = body.encode() if isinstance(body, str) else (body or b"")
        request = StubRequest(
            method=method.upper(),
            path=parts.path or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            body=raw,
            client="127.0.0.1",
        )
        return self._run(self.host.stubs[component].engine.handle(request))

    def __enter__(self) -> LocalStubs:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
