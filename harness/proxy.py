"""The recording proxy on one topology edge: the caller reaches the callee only through
it, so every exchange is seen -- whichever side is real -- and faults can be injected.

Per request: take the edge's fault (if any), forward to the callee (an in-process stub
called directly, :class:`~.peer_address.PeerApp`, or a real service by URL), journal
the exchange with its operationId and the spec violations on either side (judged
against the callee's OpenAPI document by :mod:`.exchange_checks`: bodies, statuses,
documented headers, the callee's security requirements; an answer a fault injected is
the fault's, so only its request is judged), then answer the caller -- in that order,
so a caller that has its answer finds the exchange already in the journal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson

from ecom_harness.specs import Api
from ecom_harness.stubs import (
    HUNG_UP,
    NOT_FORWARDED,
    EngineVerdict,
    Receive,
    Scope,
    Send,
    StubRequest,
    media_type_of,
    read_request,
)

from .exchange_checks import judge_exchange
from .faults import Fault, FaultBook
from .journal import Interaction, Journal, journal_body, redact_headers
from .peer_address import PeerApp

__all__ = ["RecordingProxy"]

# Hop-by-hop headers, and those httpx or the server set themselves.
_DROP_REQUEST = NOT_FORWARDED
_DROP_RESPONSE = frozenset(
    {"content-length", "connection", "keep-alive", "transfer-encoding", "date", "server"}
)


@dataclass(slots=True)
class _Outcome:
    """What the caller got: an answer (``status``), or none (``error`` says why)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    caller_gave_up: bool = False  # the caller hung up before the answer was ready
    verdict: EngineVerdict | None = None  # an in-process stub engine's (see judge_exchange)


class RecordingProxy:
    """ASGI app proxying ``caller -> callee``; ``api`` is the callee's compiled spec."""

    def __init__(
        self,
        caller: str,
        callee: str,
        *,
        upstream: httpx.AsyncClient | PeerApp,
        api: Api | None,
        journal: Journal,
        faults: FaultBook,
    ):
        self.caller, self.callee = caller, callee
        self.edge = f"{caller}->{callee}"
        self.upstream, self.api, self.journal, self.faults = upstream, api, journal, faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = await read_request(scope, receive, body_limit=None)  # forwarded whole
        query = scope.get("query_string", b"").decode("latin-1")
        fault = self.faults.take(self.edge)
        outcome = _Outcome(error="interrupted")
        watcher: asyncio.Task[None] | None = None
        # whether the caller has hung up: an in-process caller's transport says so
        # itself; over a socket, a task listens for the disconnect (a task per request
        # was 3% of the mesh's loop under load, issue 15)
        gave_up: Callable[[], bool] | None = scope.get("extensions", {}).get(HUNG_UP)
        try:
            if fault is not None and fault.kind != "delay":
                outcome = await self._fault(fault, receive, send)
            else:
                # the callee's work goes on when its caller gives up (as it would
                # without the proxy); whether anyone still waited is journaled
                if gave_up is None:
                    disconnected = asyncio.Event()
                    watcher = asyncio.create_task(_hang_up(receive, disconnected))
                    gave_up = disconnected.is_set
                if fault is not None:
                    await asyncio.sleep(fault.delay_ms / 1000)
                outcome = await self._forward(request, query, send, gave_up)
        finally:
            if watcher is not None:
                watcher.cancel()
            self._record(request, query, outcome, fault, started)
        # Journaled first, answered second: whoever has the answer finds it in the journal.
        if outcome.status is not None:
            await _answer(send, outcome.status, outcome.headers, outcome.body)

    async def _forward(
        self, request: StubRequest, query: str, send: Send, gave_up: Callable[[], bool]
    ) -> _Outcome:
        headers = {k: v for k, v in request.headers.items() if k not in _DROP_REQUEST}
        try:
            if isinstance(self.upstream, PeerApp):
                got = await self.upstream.call(
                    request.method, request.path, query, headers, request.body
                )
                status, answered, content = got.status, list(got.headers.items()), got.body
                verdict = got.verdict
            else:
                target = request.path + (f"?{query}" if query else "")
                response = await self.upstream.request(
                    request.method, target, headers=headers, content=request.body
                )
                status, answered = response.status_code, list(response.headers.items())
                content, verdict = response.content, None
        except httpx.HTTPError as exc:
            # The callee cannot be reached: the caller sees a dropped connection, as it
            # would without the proxy, not an answer the proxy made up.
            await _drop(send)
            where = str(self.upstream.base_url).rstrip("/")
            return _Outcome(
                error=f"upstream unreachable: nothing answers at {where} "
                f"({self.callee}): {type(exc).__name__}: {exc}",
                caller_gave_up=gave_up(),
            )
        answer = {k: v for k, v in answered if k not in _DROP_RESPONSE}  # lower-cased
        late = gave_up()  # before the answer is sent (then a hang-up is normal)
        return _Outcome(status, answer, content, caller_gave_up=late, verdict=verdict)

    async def _fault(self, fault: Fault, receive: Receive, send: Send) -> _Outcome:
        if fault.kind == "error":
            body = b"" if fault.body is None else orjson.dumps(fault.body)
            headers = {"content-type": "application/json"} if body else {}
            return _Outcome(fault.status, headers, body)
        if fault.kind == "reset":
            await _drop(send)
            return _Outcome(error="connection reset (fault)")
        # timeout: hold the request unanswered until the caller gives up and disconnects
        while (await receive())["type"] != "http.disconnect":
            pass
        return _Outcome(error="no answer (timeout fault)", caller_gave_up=True)

    def _record(
        self,
        request: StubRequest,
        query: str,
        outcome: _Outcome,
        fault: Fault | None,
        started: float,
    ) -> None:
        media_type = media_type_of(outcome.headers.get("content-type"))
        check = (
            judge_exchange(
                self.api,
                request,
                status=outcome.status,
                response_headers=outcome.headers,
                media_type=media_type,
                body=outcome.body,
                fault_answered=fault is not None and fault.kind != "delay",
                verdict=outcome.verdict,
            )
            if self.api is not None
            else None
        )
        limit = self.journal.body_limit
        self.journal.add(
            Interaction(
                seq=self.journal.next_seq(),
                time=time.time(),
                caller=self.caller,
                callee=self.callee,
                operation_id=check.operation_id if check else None,
                method=request.method,
                path=request.path,
                query=query,
                request_headers=redact_headers(request.headers),
                request_body=journal_body(request.body, request.media_type, limit),
                status=outcome.status,
                response_headers=redact_headers(outcome.headers),
                response_body=journal_body(outcome.body, media_type, limit),
                duration_ms=(time.perf_counter() - started) * 1000,
                violations=check.violations if check else (),
                fault=fault.describe() if fault else None,
                error=outcome.error,
                caller_gave_up=outcome.caller_gave_up,
            )
        )


async def _answer(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _hang_up(receive: Receive, gave_up: asyncio.Event) -> None:
    """Set ``gave_up`` when the caller disconnects (its timeout fired) before the
    answer is sent; cancelled once the answer is out."""
    while (await receive())["type"] != "http.disconnect":
        pass
    gave_up.set()


async def _drop(send: Send) -> None:
    """Start an answer and never finish it: the server closes the connection, and the
    caller sees it cut mid-response (as with a connection reset)."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
    )
