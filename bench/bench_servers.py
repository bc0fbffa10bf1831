"""The three servers bench_stub.py compares, each run in its own process under uvicorn:

``stub``      the catalog-svc and shipping-svc stubs answering from their examples, with
              request and response validation and journaling on;
``starlette`` a bare Starlette app answering the same JSON with ``JSONResponse``;
``raw``       a raw ASGI app sending the same bytes (the floor).

Run: python bench/bench_servers.py KIND PORT
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ecom_harness.specs import Api, read_document, shipped_spec
from ecom_harness.stubs import Exchange, StubApp, StubEngine

GET_PATH = "/products/SKU-1001"
POST_PATH = "/shipments"


def _api(component: str) -> Api:
    doc = read_document(shipped_spec(component))
    assert not isinstance(doc, Exception) and hasattr(doc, "data"), doc
    return Api(doc)  # type: ignore[arg-type]


def canned_answers() -> tuple[Any, Any]:
    """The bodies the stubs answer with by default, for the other two servers."""
    catalog, shipping = _api("catalog-svc"), _api("shipping-svc")
    get = next(iter(catalog.operations["getProduct"].responses["200"].content.values()))
    post = next(iter(shipping.operations["scheduleShipment"].responses["201"].content.values()))
    return next(iter(get.examples.values())), next(iter(post.examples.values()))


def stub_app() -> Any:
    journal: deque[Exchange] = deque(maxlen=10_000)  # journaling on, bounded
    catalog = StubApp(StubEngine(_api("catalog-svc"), recorder=journal.append))
    shipping = StubApp(StubEngine(_api("shipping-svc"), recorder=journal.append))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        target = shipping if scope.get("path", "").startswith(POST_PATH) else catalog
        await target(scope, receive, send)

    return app


def starlette_app() -> Starlette:
    get_body, post_body = canned_answers()

    async def get(request: Request) -> JSONResponse:
        return JSONResponse(get_body)

    async def post(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(post_body, status_code=201)

    return Starlette(routes=[Route(GET_PATH, get), Route(POST_PATH, post, methods=["POST"])])


def raw_app() -> Any:
    get_body, post_body = (orjson.dumps(b) for b in canned_answers())

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, status = (post_body, 201) if scope["method"] == "POST" else (get_body, 200)
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


APPS = {"stub": stub_app, "starlette": starlette_app, "raw": raw_app}

if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(
        APPS[kind](),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
    )
