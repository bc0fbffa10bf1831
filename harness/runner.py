"""``ecom-harness run``: scenarios on a mesh, one after another, each from a clean slate.

Isolation: before each scenario every simulator forgets its state, every real service's
Redis namespace is emptied (isolation.py), the journal and the faults are cleared;
after it the bus is drained so nothing it set off lands in the next one's journal, and
what a real service still does late for it (an entry naming its orders) is left out of
the next one's judgement (journal.late_entries).

Scenario settings (``given.settings``) configure the stubs when the mesh starts, so
scenarios whose settings agree share one mesh and a scenario whose settings contradict
another's gets a mesh of its own.

Parallel: on the embedded defaults (every mesh its own SQLite, fakeredis and in-process
bus) with nothing outside the process tied to its addresses (no ``--port-base``, no real
service), meshes run side by side, and a scenario that waits (a
``wait`` step: the circuit breaker's cool-down) gets a mesh of its own, so its waiting
overlaps the other scenarios' work instead of holding them up. Such meshes cannot
disturb each other: each has its own ports, stubs, state, bus and journal. With a real
broker, Redis or PostgreSQL (shared by every mesh) or fixed ports, one mesh runs at a
time. Results are reported in the order the scenarios were asked for.

Real services given by command (``real_commands``) are started once their mesh is up
(with the environment ``ecom-harness env`` gives them) and stopped when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .addresses import http_url
from .contracts.judging import PactJudge
from .env import EnvError, component_env
from .mesh import Mesh, MeshConfigError, MeshOptions
from .player import play
from .quiet import Quiet
from .real_services import RealService, RealServiceError, wait_until_answering
from .run_events import (
    Handler,
    RunFinished,
    RunResult,
    RunStarted,
    ScenarioFinished,
    ScenarioResult,
    ScenarioStarted,
    StepNote,
)
from .scenario_files import Scenario

if TYPE_CHECKING:
    from .contracts import PactFile

__all__ = ["RunPlan", "RunSetupError", "group_by_settings", "run_scenarios"]

DRAIN_S = 5.0
SETUP = "(set-up)"  # the scenario name of notes about the run's set-up


class RunSetupError(RuntimeError):
    """The run cannot start (options that do not fit, a real service that never answered)."""


@dataclass(frozen=True, slots=True)
class RunPlan:
    scenarios: Sequence[Scenario]
    options: MeshOptions = field(default_factory=MeshOptions)
    real_commands: Mapping[str, str] = field(default_factory=dict)  # component -> command
    seed: int | None = None
    startup_timeout: float = 30.0
    pacts: Sequence[PactFile] = ()  # every interaction on an edge with a pact must match it


def group_by_settings(
    scenarios: Sequence[Scenario], *, apart: Callable[[Scenario], bool] = lambda _: False
) -> list[tuple[dict[str, dict[str, Any]], list[Scenario]]]:
    """Scenarios in runs that can share a mesh: merged settings, first-come order; a
    scenario for which ``apart`` holds gets a mesh of its own."""
    groups: list[tuple[dict[str, dict[str, Any]], list[Scenario]]] = []
    for scenario in scenarios:
        if apart(scenario):
            groups.append(({c: dict(v) for c, v in scenario.settings.items()}, [scenario]))
            continue
        for merged, members in groups:
            if any(apart(m) for m in members):
                continue
            if _agree(merged, scenario.settings):
                for component, values in scenario.settings.items():
                    merged.setdefault(component, {}).update(values)
                members.append(scenario)
                break
        else:
            groups.append(({c: dict(v) for c, v in scenario.settings.items()}, [scenario]))
    return groups


def _agree(
    merged: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Mapping[str, Any]]
) -> bool:
    return all(
        merged.get(component, {}).get(key, value) == value
        for component, values in settings.items()
        for key, value in values.items()
    )


def _mesh_options(plan: RunPlan, settings: Mapping[str, Mapping[str, Any]]) -> MeshOptions:
    options = plan.options
    merged = {
        c: {**options.settings.get(c, {}), **settings.get(c, {})}
        for c in {*options.settings, *settings}
    }
    real = dict(options.real)
    if plan.real_commands:
        if options.port_base is None:
            raise RunSetupError(
                "--real-cmd needs --port-base: the service is configured with the mesh's "
                "fixed addresses before it starts"
            )
        probe = Mesh(replace(options, real={}))
        for component in plan.real_commands:
            if component not in probe.plan.components:
                known = ", ".join(probe.plan.components)
                raise RunSetupError(
                    f"--real-cmd names unknown component '{component}' (known: {known})"
                )
            real.setdefault(component, http_url(options.host, probe.plan.components[component]))
    return replace(options, settings=merged, real=real)


async def run_scenarios(plan: RunPlan, handlers: Sequence[Handler]) -> RunResult:
    """Run every scenario of ``plan``; each event goes to every handler as it happens.
    A set-up failure (mesh, real service) ends the run with ``setup_error`` set."""
    began = time.perf_counter()
    result = RunResult()
    all_handlers = list(handlers)

    def emit(event: Any) -> None:
        for handler in all_handlers:
            handler(event)

    emit(RunStarted([s.name for s in plan.scenarios], _describe(plan)))
    parallel = _side_by_side(plan)
    groups = group_by_settings(plan.scenarios, apart=_waits if parallel else lambda _: False)
    # the waiting ones first: their mesh starts first, and their waits cover the others' start
    groups.sort(key=lambda group: not any(_waits(s) for s in group[1]))
    order = {s.name: i for i, s in enumerate(plan.scenarios)}
    started = iter(range(1, len(plan.scenarios) + 1))
    finished: list[ScenarioResult] = []
    quiet = Quiet()  # timed steps run alone, also across meshes side by side

    # Meshes start one after another (starting is CPU work: side by side they would only
    # slow each other), the waiting scenarios' first; the others' meshes start once those
    # are waiting (their first wait step, or their end), so the work fills the waits
    # instead of slowing the steps before them (the waits decide how long the run takes).
    starting = asyncio.Lock()
    waiting_of = {  # group index -> set once that group waits (or ends)
        index: asyncio.Event()
        for index, (_, members) in enumerate(groups)
        if parallel and any(map(_waits, members))
    }

    async def run_group(
        settings: dict[str, dict[str, Any]],
        members: list[Scenario],
        pact_judge: PactJudge | None,
        waiting: asyncio.Event | None,
    ) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if waiting is not None:
                stack.callback(waiting.set)  # ended (or failed): nothing to wait for
            else:
                for other in waiting_of.values():
                    await other.wait()
            async with starting:
                mesh = await stack.enter_async_context(
                    _mesh_and_services(plan, _mesh_options(plan, settings), emit)
                )
            for scenario in members:
                emit(ScenarioStarted(scenario.name, scenario.title, next(started), len(order)))
                await mesh.reset()
                outcome = await play(
                    mesh,
                    scenario,
                    all_handlers,
                    seed=plan.seed,
                    quiet=quiet,
                    pacts=plan.pacts,
                    pact_judge=pact_judge,
                    waiting=waiting.set if waiting is not None else lambda: None,
                )
                await _settle(mesh)
                finished.append(outcome)
                emit(ScenarioFinished(scenario.name, outcome))

    try:
        # the pact judge's worker is forked now, before any mesh starts a thread
        with PactJudge() if plan.pacts else contextlib.nullcontext() as pact_judge:
            try:
                if parallel:
                    async with asyncio.TaskGroup() as tasks:
                        for index, (settings, members) in enumerate(groups):
                            waiting = waiting_of.get(index)
                            tasks.create_task(run_group(settings, members, pact_judge, waiting))
                else:
                    for settings, members in groups:
                        await run_group(settings, members, pact_judge, None)
            except BaseExceptionGroup as group:  # the first failure of a parallel run
                raise _first(group) from None
    except (RunSetupError, MeshConfigError, RealServiceError, EnvError) as exc:
        result.setup_error = str(exc)
    except OSError as exc:  # a port in use, a broker that would not start
        result.setup_error = f"cannot run the mesh: {exc}"
    result.scenarios = sorted(finished, key=lambda s: order[s.name])
    result.duration_ms = (time.perf_counter() - began) * 1000
    emit(RunFinished(result))
    return result


def _describe(plan: RunPlan) -> dict[str, Any]:
    options = plan.options
    return {
        "real": dict(options.real)
        | {c: f"command: {cmd}" for c, cmd in plan.real_commands.items()},
        "kafka": options.kafka or "in-process",
        "redis": options.redis_url or "fakeredis",
        "postgres": options.postgres_url or "sqlite",
        "port_base": options.port_base,
        "seed": plan.seed,
    }


@contextlib.asynccontextmanager
async def _mesh_and_services(
    plan: RunPlan, options: MeshOptions, emit: Callable[[Any], None]
) -> Any:
    mesh = Mesh(options)
    await mesh.start()
    services: list[RealService] = []
    try:
        for component, command in plan.real_commands.items():
            env = component_env(mesh.topology, mesh.plan, options, component)
            for warning in env.warnings:  # what it will lack (REDIS_URL without --redis)
                emit(StepNote(SETUP, component, warning))
            service = RealService(component, command, env, options.host, plan.startup_timeout)
            services.append(service)
            await service.start()
        for component, url in plan.options.real.items():  # started by the user
            await wait_until_answering(component, url, plan.startup_timeout)
        yield mesh
    finally:
        for service in reversed(services):
            await service.stop()
        await mesh.stop()


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    found = group.exceptions[0]
    return _first(found) if isinstance(found, BaseExceptionGroup) else found


def _side_by_side(plan: RunPlan) -> bool:
    """Whether meshes can run side by side without disturbing each other: only with
    everything embedded (each mesh its own SQLite databases, fakeredis and in-process
    bus) and nothing outside the process tied to fixed addresses. Two meshes on one
    PostgreSQL server, Redis or Kafka cluster would share databases, keys and consumer
    groups."""
    options = plan.options
    return (
        options.port_base is None
        and not options.real
        and not plan.real_commands
        and options.kafka is None
        and options.redis_url is None
        and options.postgres_url is None
    )


def _waits(scenario: Scenario) -> bool:
    return any(step.kind == "wait" for step in scenario.steps)


async def _settle(mesh: Mesh) -> None:
    """Let what the scenario set off finish (consumers handle their events) before the
    next scenario's reset; a bus that does not drain in time is left as it is."""
    if mesh.bus is not None:
        with contextlib.suppress(TimeoutError):
            await mesh.bus.drain(DRAIN_S)
