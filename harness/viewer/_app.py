"""The live UI (``ecom-harness ui``) as a Starlette app.

``GET /`` is the player page; ``/assets/*`` its CSS and JS (package data, no build step,
no CDN); ``GET /api/scenarios`` the scenarios for the sidebar; ``POST /api/runs/NAME``
starts a run and ``GET /api/runs/ID/events`` streams it as server-sent events (replayed
from the start for a late or reconnecting page). Once it finished: ``GET /api/runs/ID``
is the run as the page reads it, ``/api/runs/ID/journal`` its journal as JSON Lines and
``/api/runs/ID/report.html`` the same run as a self-contained report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ecom_harness.harness.mesh import MeshOptions
from ecom_harness.harness.scenario_files import Scenario
from ecom_harness.specs import Topology

from ._live import LiveRun, RunBusy, RunDesk
from ._page import report_html, ui_html
from ._runs import scenario_record

__all__ = ["ui_app"]

TITLE = "E-Commerce Microservices"


def _sse(kind: str, data: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def ui_app(topology: Topology, options: MeshOptions, scenarios: dict[str, Scenario]) -> Starlette:
    desk = RunDesk(topology, options, scenarios)
    page = ui_html(TITLE, topology, {"example": TITLE})

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def list_scenarios(_: Request) -> JSONResponse:
        return JSONResponse(
            [
                {"name": s.name, "title": s.title, "description": s.description}
                for s in scenarios.values()
            ]
        )

    async def start_run(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in scenarios:
            return JSONResponse({"error": f"unknown scenario '{name}'"}, status_code=404)
        try:
            run = desk.start(name)
        except RunBusy as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"id": run.id, "events": f"/api/runs/{run.id}/events"}, 201)

    def _run(request: Request) -> LiveRun | None:
        return desk.runs.get(request.path_params["id"])

    async def events(request: Request) -> Response:
        run = _run(request)
        if run is None:
            return JSONResponse({"error": "no such run"}, status_code=404)

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 1000\n\n"
            async for kind, data in run.follow():
                yield _sse(kind, data)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def finished(request: Request) -> Response:
        run = _run(request)
        if run is None or run.page is None:
            return JSONResponse({"error": "no finished run with that id"}, status_code=404)
        return Response(orjson.dumps(run.page), media_type="application/json")

    async def journal(request: Request) -> Response:
        run = _run(request)
        if run is None or run.result is None:
            return JSONResponse({"error": "no finished run with that id"}, status_code=404)
        lines = b"".join(orjson.dumps(e) + b"\n" for e in run.result.journal)
        return Response(lines, media_type="application/x-ndjson")

    async def report(request: Request) -> Response:
        run = _run(request)
        if run is None or run.result is None:
            return JSONResponse({"error": "no finished run with that id"}, status_code=404)
        record = scenario_record(run.result, run.scenario)
        return HTMLResponse(report_html(f"{TITLE}: {run.scenario.title}", topology, [record]))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await desk.stop()

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/scenarios", list_scenarios),
            Route("/api/runs/{name}", start_run, methods=["POST"]),
            Route("/api/runs/{id}", finished),
            Route("/api/runs/{id}/events", events),
            Route("/api/runs/{id}/journal", journal),
            Route("/api/runs/{id}/report.html", report),
            Mount(
                "/assets",
                StaticFiles(packages=[("ecom_harness.harness.viewer", "assets")]),
                name="assets",
            ),
        ],
        lifespan=lifespan,
    )
