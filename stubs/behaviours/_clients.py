"""HTTP clients for calls between components: the edge's timeout, and pooled connections
that never turn a server's idle close into a failed call.

Two things go wrong with httpx's defaults between services. Its 5 s timeout fires before
any longer timeout the caller meant to apply (a documented 15 s wait never happens), so
every client here is given its edge's timeout (:class:`~._deadlines.Deadlines`). And a
pooled keep-alive connection that the server closes after its idle time can be picked for
a request at the moment it closes: the request fails before any byte of an answer, though
the server never saw it. So clients drop idle connections before the servers do
(``keepalive_expiry`` below the servers' :data:`~._deadlines.SERVER_KEEPALIVE`), and a
request that failed before any answer on a *reused* connection is sent once more on a
fresh one (never one on a new connection: the server may have acted on that).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from ecom_harness.stubs._in_process import BODY_METHODS, InProcessTransport

from ._deadlines import Deadlines

__all__ = ["PeerClient", "ReusedConnectionRetry", "peer_client"]

# What a request on a connection the server already closed fails with, before any answer.
_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_FORM = "application/x-www-form-urlencoded"
_NEW_CONNECTION_EVENTS = (
    "connection.connect_tcp.started",
    "connection.connect_unix_socket.started",
)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing it is given."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


def _typed(headers: Mapping[str, str] | None, media_type: str) -> dict[str, str]:
    """``headers`` with the body's Content-Type, unless they name one themselves."""
    given = dict(headers or {})
    if any(name.lower() == "content-type" for name in given):
        return given
    return {"content-type": media_type, **given}


def _form_encoded(data: Mapping[str, Any]) -> bytes:
    """``data`` as httpx form-encodes a ``data=`` mapping: a list or tuple repeats its
    key, True/False/None are written "true"/"false"/""."""
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            word = "true" if item is True else "false" if item is False else item
            pairs.append((key, "" if word is None else str(word)))
    return urlencode(pairs).encode("ascii")


class _PeerResponse(httpx.Response):
    """An in-process peer's answer: its JSON read by orjson (the standard library's
    decoder was 1% of the mesh's loop under load, issue 15); ValueError either way."""

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        request: httpx.Request,
    ):
        """As ``httpx.Response(status, headers=..., content=..., request=...)``, without
        reading the body it already has through httpx's stream, chunker and decoders
        (2% of the mesh's loop under load, issue 15) -- unless the body is encoded
        (gzip...), which httpx's decoders undo."""
        super().__init__(status, headers=headers, stream=httpx.ByteStream(content), request=request)
        self._prepare({"Content-Length": str(len(content))})
        if "content-encoding" in self.headers:
            self.read()
            return
        self._content = content
        self._num_bytes_downloaded = len(content)
        self.is_stream_consumed = self.is_closed = True

    def json(self, **kwargs: Any) -> Any:
        return super().json(**kwargs) if kwargs else orjson.loads(self.content)


class PeerClient(httpx.AsyncClient):
    """An httpx client for one component's calls to another: it keeps no cookies.

    httpx's client keeps every ``Set-Cookie`` it is answered and sends it with its later
    requests. Between services that would carry one caller's cookies into the next
    caller's call (the gateway's client serves every user). Keeping nothing also spares
    the jar's work on every answer: 3% of the mesh's loop under load (issue 15)."""

    _MERGED_KEPT = 512  # request URLs remembered (paths with ids in them come and go)

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._merged: dict[str, httpx.URL] = {}
        transport = options.get("transport")
        self._in_process = transport if isinstance(transport, InProcessTransport) else None

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: Any = None,
        json: Any = None,
        headers: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        **options: Any,
    ) -> httpx.Response:
        """Through httpx's client -- or, for a plain request (bytes, JSON or a form's
        ``data`` dict; headers as a dict; nothing else) to an in-process peer, straight
        to the transport's app with the same headers httpx would send: building httpx's
        request and running its client machinery (auth, redirects, hooks) was 8% of the
        mesh's loop under load, for nothing an in-process call needs (issue 15)."""
        form = options.pop("data", None) or None  # httpx sends no body for an empty one
        given_bodies = (content is not None) + (json is not None) + (form is not None)
        plain = (
            self._in_process is not None
            and (headers is None or type(headers) is dict)
            and given_bodies <= 1
            and (content is None or type(content) is bytes)
            and (form is None or type(form) is dict)
            and all(
                value is None or value is httpx.USE_CLIENT_DEFAULT for value in options.values()
            )
        )
        if not plain:
            if form is not None:
                options["data"] = form
            return await super().request(
                method, url, content=content, json=json, headers=headers, timeout=timeout, **options
            )
        target = self._merge_url(url)
        if json is not None:
            body, given = orjson.dumps(json), _typed(headers, "application/json")
        elif form is not None:
            body, given = _form_encoded(form), _typed(headers, _FORM)
        else:
            body, given = content or b"", dict(headers or {})
        overridden = {name.lower().encode() for name in given}
        raw = [(b"Host", target.netloc)]
        raw += [(k, v) for k, v in self.headers.raw if k.lower() not in overridden]
        raw += [(k.encode(), str(v).encode()) for k, v in given.items()]
        if body or method in BODY_METHODS:
            raw.append((b"Content-Length", str(len(body)).encode()))
        request = httpx.Request(method, target, headers=raw, stream=httpx.ByteStream(body))
        wait = self.timeout if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout)
        return await self._in_process_answer(request, raw, body, wait.read)

    async def _in_process_answer(
        self,
        request: httpx.Request,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeout: float | None,
    ) -> httpx.Response:
        """``request`` (as ``headers`` and ``body``) to the in-process peer's app."""
        assert self._in_process is not None
        status, answered, content = await self._in_process.exchange(request, headers, body, timeout)
        return _PeerResponse(status, answered, content, request)

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL:
        """The request URL against the base URL, parsed once per path: httpx parses
        both again for every request (6% of the mesh's loop under load, issue 15), and a
        caller sends the same few paths over and over. A URL is immutable, so one can
        serve every request to its path."""
        if not isinstance(url, str):
            return super()._merge_url(url)
        merged = self._merged.get(url)
        if merged is None:
            if len(self._merged) >= self._MERGED_KEPT:
                self._merged.clear()
            merged = self._merged[url] = super()._merge_url(url)
        return merged

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        """A built request: to an in-process peer, without auth, straight to the
        transport's app (no redirect is followed either way: a peer client never does)."""
        default = httpx.USE_CLIENT_DEFAULT
        no_auth = auth is None or (auth is default and self.auth is None)
        follows = self.follow_redirects if follow_redirects is default else follow_redirects
        if self._in_process is None or stream or not no_auth or follows:
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        wait = (request.extensions.get("timeout") or {}).get("read")
        return await self._in_process_answer(
            request, request.headers.raw, await request.aread(), wait
        )

    def build_request(self, method: str, url: httpx.URL | str, **options: Any) -> httpx.Request:
        """A ``json=`` body written by orjson (httpx's standard-library encoder was 1%
        of the mesh's loop under load): compact UTF-8, as httpx writes it."""
        body, headers = options.get("json"), options.get("headers")
        if (
            body is not None
            and options.get("content") is None
            and (headers is None or isinstance(headers, Mapping))
        ):
            del options["json"]
            options["content"] = orjson.dumps(body)
            options["headers"] = _typed(headers, "application/json")
        return super().build_request(method, url, **options)

    @property
    def base_url(self) -> httpx.URL:
        return self._base_url

    @base_url.setter
    def base_url(self, url: httpx.URL | str) -> None:
        self._base_url = self._enforce_trailing_slash(httpx.URL(url))
        if hasattr(self, "_merged"):
            self._merged.clear()  # merged against the old base

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("a PeerClient keeps no cookies")


class ReusedConnectionRetry(httpx.AsyncBaseTransport):
    """Wraps a transport: a request that failed on a reused pooled connection before an
    answer arrived is sent once more (the pool then opens a fresh connection)."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner = inner
        self.retried = 0  # how many requests were sent again (tests read it)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        opened = False
        outer: Callable[[str, Mapping[str, Any]], Awaitable[None]] | None = request.extensions.get(
            "trace"
        )

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            nonlocal opened
            if event in _NEW_CONNECTION_EVENTS:
                opened = True
            if outer is not None:
                await outer(event, info)

        request.extensions = {**request.extensions, "trace": trace}
        try:
            return await self.inner.handle_async_request(request)
        except _STALE_CONNECTION:
            if opened:
                raise  # a fresh connection: the server may have received it
            self.retried += 1
            return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def peer_client(
    base_url: str,
    *,
    timeout: float | None,
    deadlines: Deadlines,
    headers: Mapping[str, str] | None = None,
    verify: Any = True,
) -> PeerClient:
    """A client to one component at a URL: the edge's ``timeout`` for connecting,
    reading and writing (never httpx's 5 s), idle connections dropped after
    ``deadlines.keepalive`` seconds, and a stale pooled connection retried. A timeout of
    None waits as long as it takes (the mesh's proxies: the caller's own timeout decides)."""
    transport = httpx.AsyncHTTPTransport(
        verify=verify,
        limits=httpx.Limits(keepalive_expiry=deadlines.keepalive),
    )
    return PeerClient(
        base_url=base_url,
        headers=dict(headers or {}),
        timeout=httpx.Timeout(timeout),
        transport=ReusedConnectionRetry(transport),
    )
