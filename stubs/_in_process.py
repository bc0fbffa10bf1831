"""An httpx transport into an ASGI app in this process that behaves like a socket where
a caller can tell the difference.

The mesh's stubs call each other through the edges' recording proxies. When both the
caller and the proxy live in the mesh process, a loopback socket only adds an HTTP
client's and a server's parsing to every call (about a quarter of the mesh's CPU per
order). :class:`InProcessTransport` hands the request to the proxy's ASGI app directly,
keeping what the socket gave:

* the app runs in a task of its own, so a caller that gives up (its timeout fires, its
  task is cancelled) does not cancel the callee's work: the app's ``receive`` reports
  ``http.disconnect`` instead, as a server does when the client hangs up;
* the client's read timeout bounds the wait (``httpx.ReadTimeout``), as on a socket
  (httpx's own ``ASGITransport`` ignores it);
* an app that starts an answer and never finishes it reads as a connection closed
  mid-answer (``httpx.RemoteProtocolError``); one that fails before answering gets 500,
  as from uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx

from .engine import EngineVerdict, RequestHead, StubApp

__all__ = ["HUNG_UP", "AppAnswer", "InProcessTransport", "call_app"]

# The scope extension through which the transport tells the app, without a receive()
# call, whether the caller has hung up: a function returning True once it has.
HUNG_UP = "ecom.hung_up"

logger = logging.getLogger(__name__)

App = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
_PENDING = object()  # an exchange not answered yet
_INTERNAL_ERROR = (500, [(b"content-type", b"text/plain; charset=utf-8")], b"Internal Server Error")


class _Exchange:
    """One request's conversation with the app: what it sent, and whether anyone still
    listens."""

    def __init__(self, body: bytes):
        self.body: bytes | None = body
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.parts: list[bytes] = []
        # None once answered, the error the caller gets instead; _PENDING until then. A
        # future is made only for a caller that waits (the transport's, not call_app's).
        self.outcome: BaseException | object | None = _PENDING
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False  # answered, or the caller hung up
        self._closing: asyncio.Event | None = None  # made for an app that waits for it
        self.caller_gone = False

    async def receive(self) -> MutableMapping[str, Any]:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.closed:
            if self._closing is None:
                self._closing = asyncio.Event()
            await self._closing.wait()
        return {"type": "http.disconnect"}

    def _close(self) -> None:
        self.closed = True
        if self._closing is not None:
            self._closing.set()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if self.caller_gone:
            return  # as a server does once the client has hung up
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            self.parts.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self._settle(None)

    @property
    def settled(self) -> bool:
        return self.outcome is not _PENDING

    async def answered(self) -> None:
        """Wait for the answer; raises what the caller gets instead of one."""
        if self.outcome is _PENDING:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        elif isinstance(self.outcome, BaseException):
            raise self.outcome

    def _finish(self, outcome: BaseException | None) -> None:
        if self.outcome is not _PENDING:
            return
        self.outcome = outcome
        if self._waiter is not None and not self._waiter.done():
            if outcome is None:
                self._waiter.set_result(None)
            else:
                self._waiter.set_exception(outcome)

    def _settle(self, error: BaseException | None) -> None:
        self._close()
        self._finish(None if self.caller_gone else error)  # nobody would retrieve it

    def app_done(self, task: asyncio.Task[None], request: httpx.Request) -> None:
        """The app returned or failed: whatever the caller has not got yet, it never will."""
        error = None if task.cancelled() else task.exception()
        if error is not None and not self.caller_gone:
            logger.error("exception in ASGI application", exc_info=error)
        if self.settled:
            return
        if self.status is None and error is not None:
            self.status, self.headers, body = _INTERNAL_ERROR
            self.parts = [body]
            self._settle(None)
        else:  # nothing, or an answer started and never finished: a closed connection
            self._settle(
                httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body",
                    request=request,
                )
            )

    def hang_up(self) -> None:
        self.caller_gone = True
        self._close()

    def hung_up(self) -> bool:
        return self.caller_gone

    def time_out(self, request: httpx.Request) -> None:
        """The caller's read timeout fired before the answer: it hangs up, and gets
        ``httpx.ReadTimeout``, as on a socket."""
        if not self.settled:
            self.hang_up()
            self._finish(httpx.ReadTimeout("timed out", request=request))


class InProcessTransport(httpx.AsyncBaseTransport):
    """Requests into ``app`` without a socket; see the module doc for what it keeps.
    ``client`` is the ASGI peer address the app sees."""

    def __init__(self, app: App, client: tuple[str, int] = ("127.0.0.1", 0)):
        self.app, self.client = app, client
        self._running: set[asyncio.Task[None]] = set()  # apps whose callers left early

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = (request.extensions.get("timeout") or {}).get("read")
        status, headers, body = await self.exchange(
            request, request.headers.raw, await request.aread(), timeout
        )
        return httpx.Response(status, headers=headers, content=body)

    async def exchange(
        self,
        request: httpx.Request,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeout: float | None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``request`` (its method and URL; ``headers`` and ``body`` as sent) to the app:
        the answer's status, headers and body, waiting at most ``timeout`` seconds for
        it (``httpx.ReadTimeout``)."""
        exchange = _Exchange(body)
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in headers],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": self.client,
            "root_path": "",
            "extensions": {HUNG_UP: exchange.hung_up},
        }
        task = asyncio.ensure_future(self.app(scope, exchange.receive, exchange.send))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        task.add_done_callback(lambda done: exchange.app_done(done, request))
        # a timer, not asyncio.timeout(): its context manager cost 3% of the mesh's
        # loop under load (issue 15)
        timer = None
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(timeout, exchange.time_out, request)
        try:
            await exchange.answered()
        except asyncio.CancelledError:
            exchange.hang_up()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        assert exchange.status is not None
        return exchange.status, exchange.headers, b"".join(exchange.parts)

    async def aclose(self) -> None:
        """Apps still working for callers that left are not waited for (nor are they on
        a server's socket); they end with the loop."""


@dataclass(frozen=True, slots=True)
class AppAnswer:
    """An ASGI app's whole answer; ``headers`` as httpx's ``Headers.items()`` gives them:
    lower-case names, a repeated one's values joined with ", "."""

    status: int
    headers: dict[str, str]
    body: bytes
    verdict: EngineVerdict | None = None  # a stub engine's, on the exchange it served


# The values of the client defaults call_app sends (``CLIENT_DEFAULT_HEADERS`` names them).
_CLIENT_DEFAULTS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": f"python-httpx/{httpx.__version__}",
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # httpx sends Content-Length: 0


async def call_app(
    app: App,
    method: str,
    path: str,
    *,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    host: str,
    client: tuple[str, int],
) -> AppAnswer:
    """One request to ``app``, run in the calling task, its answer collected: what an
    httpx client over ``httpx.ASGITransport`` does (the same headers reach the app: Host,
    the client's defaults, Content-Length), without building httpx's request and response
    around it -- the mesh's proxies call their in-process callees this way. An exception
    in the app propagates, as through ``ASGITransport``; an answer never finished raises
    ``httpx.RemoteProtocolError``. A stub app is served without ASGI's messages
    (``StubApp.serve``), and its engine's verdict comes back with the answer
    (``AppAnswer.verdict``), for the proxy to judge the exchange without doing it again."""
    lowered = {name.lower(): value for name, value in headers.items()}
    sent = (
        {"host": host} | {k: v for k, v in _CLIENT_DEFAULTS.items() if k not in lowered} | lowered
    )
    if body or method in BODY_METHODS:
        sent["content-length"] = str(len(body))
    if isinstance(app, StubApp):  # no ASGI messages to make and read back (StubApp.serve)
        head = RequestHead(method, path, query.encode("latin-1"), sent, client[0])
        response, wire, payload = await app.serve(head, body)
        status, verdict = response.status, response.verdict
    else:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in sent.items()],
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("utf-8"),
            "query_string": query.encode("latin-1"),
            "server": (host, None),
            "client": client,
            "root_path": "",
        }
        status, wire, payload = await _through_asgi(app, scope, body)
        verdict = None
    answer: dict[str, str] = {}
    for name, value in wire:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        answer[key] = f"{answer[key]}, {text}" if key in answer else text
    return AppAnswer(status, answer, payload, verdict)


async def _through_asgi(
    app: App, scope: MutableMapping[str, Any], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The request (``scope``, ``body``) to any ASGI app: its status, headers, body."""
    exchange = _Exchange(body)
    await app(scope, exchange.receive, exchange.send)
    if not exchange.settled or exchange.status is None:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )
    return exchange.status, exchange.headers, b"".join(exchange.parts)
