"""Live runs for the UI: one scenario at a time on a mesh of its own, its journal streamed
to the page as it grows.

Each run keeps the messages it produced (``start``, ``entry``, ``step``,
``expectation``, ``finished``) so a page that connects late, or reconnects, is replayed
everything from the start and then follows. A journal listener sends each entry as it
is recorded; when the scenario ends, ``finished`` carries the final journal (event
entries by then know every consumer group that handled them) and every expectation.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ecom_harness.harness.journal import Entry
from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.harness.player import play
from ecom_harness.harness.run_events import (
    ExpectationChecked,
    RunEvent,
    ScenarioResult,
    StepNote,
    StepSent,
)
from ecom_harness.harness.scenario_files import Scenario
from ecom_harness.specs import Topology

from ._model import compact_entry, run_json
from ._runs import expectation_mark, scenario_record

__all__ = ["LiveRun", "RunBusy", "RunDesk"]

DRAIN_S = 5.0
Message = tuple[str, dict[str, Any]]


class RunBusy(RuntimeError):
    """Another run is still going; the UI runs one scenario at a time."""


@dataclass(slots=True)
class LiveRun:
    id: str
    scenario: Scenario
    messages: list[Message] = field(default_factory=list)
    result: ScenarioResult | None = None
    page: dict[str, Any] | None = None  # the finished run as the page reads it
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def say(self, kind: str, data: dict[str, Any]) -> None:
        self.messages.append((kind, data))
        self.changed.set()

    async def follow(self) -> AsyncIterator[Message]:
        """Every message so far, then each new one, until the run is done."""
        sent = 0
        while True:
            self.changed.clear()
            while sent < len(self.messages):
                yield self.messages[sent]
                sent += 1
            if self.done:
                return
            await self.changed.wait()


class RunDesk:
    """Starts runs (one at a time) with the UI's mesh options and keeps them."""

    def __init__(self, topology: Topology, options: MeshOptions, scenarios: dict[str, Scenario]):
        self.topology, self.options, self.scenarios = topology, options, scenarios
        self.broker = next(
            (n for n, c in topology.components.items() if c.kind == "broker"), "kafka"
        )
        self.runs: dict[str, LiveRun] = {}
        self._ids = itertools.count(1)
        self._current: asyncio.Task[None] | None = None

    def start(self, name: str) -> LiveRun:
        if self._current is not None and not self._current.done():
            raise RunBusy("a run is still going; wait for it to finish")
        run = LiveRun(f"{next(self._ids)}", self.scenarios[name])
        self.runs[run.id] = run
        self._current = asyncio.create_task(self._run(run))
        return run

    async def stop(self) -> None:
        if self._current is not None:
            self._current.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._current

    async def _run(self, run: LiveRun) -> None:
        scenario = run.scenario
        began = time.time()
        loop = asyncio.get_running_loop()
        run.say(
            "start",
            {
                "run": run.id,
                "name": scenario.name,
                "title": scenario.title,
                "description": scenario.description,
            },
        )

        def on_entry(entry: Entry) -> None:  # may be called from a broker's thread
            data = compact_entry(asdict(entry), self.broker, began)
            loop.call_soon_threadsafe(run.say, "entry", data)

        try:
            given = self.options.settings
            settings = {
                c: {**given.get(c, {}), **scenario.settings.get(c, {})}
                for c in {*given, *scenario.settings}
            }  # the scenario's settings win, component by component (as for `run`)
            options = replace(self.options, settings=settings)
            async with Mesh(options, self.topology) as mesh:
                await mesh.reset()
                mesh.journal.listeners.append(on_entry)
                result = await play(mesh, scenario, [lambda e: self._relay(run, e)])
                mesh.journal.listeners.remove(on_entry)
                if mesh.bus is not None:
                    with contextlib.suppress(TimeoutError):
                        await mesh.bus.drain(DRAIN_S)
            run.result = result
            record = scenario_record(result, scenario)
            run.page = run_json(record, self.broker, start=began)
            run.say("finished", run.page)
        except Exception as exc:  # noqa: BLE001 - shown to the user on the page, not lost
            run.say("failed", {"error": f"{type(exc).__name__}: {exc}"})
        finally:
            run.done = True
            run.changed.set()

    def _relay(self, run: LiveRun, event: RunEvent) -> None:
        if isinstance(event, StepSent):
            run.say(
                "step",
                {
                    "say": event.say,
                    "method": event.method,
                    "path": event.path,
                    "status": event.status,
                    "error": event.error,
                },
            )
        elif isinstance(event, StepNote):
            run.say("step", {"say": event.say})
        elif isinstance(event, ExpectationChecked):
            run.say("expectation", expectation_mark(event.result).to_json())
