"""The consumer side of every pact, genuinely exercised.

HTTP: the scenarios run again on a mesh whose edge proxies forward each consumer's
calls to pact-python's mock server for that edge, in place of the provider. What the
consumer's simulator sends is matched by the mock server against its pact: a request the
pact does not describe, or an interaction the consumer never sent, is a problem, and the
pacts are not written.

Messages: each message of a pact is handed to the consumer's simulator through the
mesh's bus (pact-python's ``Pact.verify`` for asynchronous messages); the simulator must
handle it (its consumer group takes it, it is not dead-lettered).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
from pact import Pact
from pact.error import MissingRequest

from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.harness.player import play
from ecom_harness.harness.runner import group_by_settings
from ecom_harness.harness.scenario_files import Scenario
from ecom_harness.specs import load_topology

from .build import BuiltPact, add_http
from .canonical import Canonicalizer
from .spec_index import SpecIndex
from .verify import running_mesh

__all__ = ["exercise_consumers"]

DELIVERY_WAIT_S = 5.0
DRAIN_S = 2.0  # what the scenario set off settles; a consumer stuck on a mock answer is left


async def exercise_consumers(
    built: Sequence[BuiltPact],
    scenarios: Mapping[str, Scenario],
    seed: int,
    index: SpecIndex,
    edges_of: Mapping[str, set[str]],
) -> list[str]:
    """Every problem found; ``edges_of`` says which edges each scenario uses, so a run
    plays only the scenarios that reach its mocked edges."""
    problems: list[str] = []
    for group in rounds([b for b in built if b.http], _drives(index)):
        mocked = {f"{b.consumer}->{b.provider}" for b in group}
        chosen = {n: s for n, s in scenarios.items() if edges_of.get(n, set()) & mocked}
        found, missing = await _http(group, chosen, seed)
        problems += found
        for pact, request in missing:
            problems += await _solo(pact, request, scenarios, seed, index)
    problems += await asyncio.to_thread(_messages, built, scenarios)
    return problems


def _comparable(request: Mapping[str, Any]) -> bytes:
    """A request as the mock server reports it and as the pact file holds it, alike."""
    body = request.get("body")
    if isinstance(body, dict) and "contentType" in body and "content" in body:
        body = body["content"]
    headers = {
        str(k).lower(): ", ".join(map(str, v)) if isinstance(v, list) else str(v)
        for k, v in (request.get("headers") or {}).items()
    }
    keep = {
        "method": request.get("method"),
        "path": request.get("path"),
        "body": body,
        "headers": headers,
    }
    return orjson.dumps(keep, option=orjson.OPT_SORT_KEYS, default=str)


async def _solo(
    pact: BuiltPact,
    request: Mapping[str, Any],
    scenarios: Mapping[str, Scenario],
    seed: int,
    index: SpecIndex,
) -> list[str]:
    """An interaction the consumer never sent to the shared mock server: another one
    with a request it cannot tell apart was answered instead (the answers differ by the
    provider's state, which a mock server does not know). Exercise it alone: its own
    scenario, with only this interaction on the edge's mock server."""
    with tempfile.TemporaryDirectory(prefix="ecom-solo-") as tmp:
        pact.pact.write_file(tmp, overwrite=True)
        written = orjson.loads((Path(tmp) / f"{pact.name}.json").read_bytes())
    wanted = _comparable(request)
    description = next(
        (
            i["description"]
            for i in written["interactions"]
            if i.get("type") == "Synchronous/HTTP" and _comparable(i["request"]) == wanted
        ),
        None,
    )
    plan = next((p for p in pact.http if p.description == description), None)
    if plan is None:
        return [
            f"{pact.name}: the consumer never sent {request.get('method')} {request.get('path')}"
        ]
    solo = BuiltPact(
        pact.consumer,
        pact.provider,
        Pact(pact.consumer, pact.provider).with_specification("V4"),
        [plan],
    )
    add_http(solo.pact, plan, Canonicalizer(), index.api(pact.provider))
    found, missing = await _http([solo], {plan.scenario: scenarios[plan.scenario]}, seed)
    if missing:
        found.append(f"{pact.name}: {plan.description}: the consumer never sent this request")
    return found


def _drives(index: SpecIndex) -> dict[str, set[str]]:
    """Who sets whom to work: a caller its callee, a publisher the topic's receivers."""
    graph: dict[str, set[str]] = {}
    for edge in load_topology().edges:
        if edge.is_http:
            graph.setdefault(edge.source, set()).add(edge.target)
    for channel in index.channels.values():
        for sender in channel.senders:
            graph.setdefault(sender, set()).update(channel.receivers)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, pending = set(), [start]
    while pending:
        node = pending.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            pending.extend(graph.get(node, ()))
    return False


def rounds(pacts: Sequence[BuiltPact], graph: dict[str, set[str]]) -> list[list[BuiltPact]]:
    """Edges that can be mocked in one run of the scenarios: no mocked provider may be
    what sets another mocked edge's consumer to work (a mocked order-svc would never
    call inventory-svc), so such edges go to later runs."""
    found: list[list[BuiltPact]] = []
    for pact in pacts:
        for group in found:
            if not any(
                _reaches(graph, other.provider, pact.consumer)
                or _reaches(graph, pact.provider, other.consumer)
                for other in group
            ):
                group.append(pact)
                break
        else:
            found.append([pact])
    return found


async def _http(
    built: Sequence[BuiltPact], scenarios: Mapping[str, Scenario], seed: int
) -> tuple[list[str], list[tuple[BuiltPact, Mapping[str, Any]]]]:
    """Problems, and the interactions no request reached (to be tried alone)."""
    problems: list[str] = []
    missing: list[tuple[BuiltPact, Mapping[str, Any]]] = []
    with ExitStack() as stack:
        servers = {
            b.name: (
                b,
                stack.enter_context(b.pact.serve(addr="127.0.0.1", raises=False, verbose=False)),
            )
            for b in built
        }
        ordered = [scenarios[name] for name in sorted(scenarios)]
        for settings, members in group_by_settings(ordered):
            mesh = Mesh(MeshOptions(settings=settings))
            await mesh.start()
            mocks: list[httpx.AsyncClient] = []
            try:
                for pact, server in servers.values():
                    proxy = mesh.proxies[f"{pact.consumer}->{pact.provider}"]
                    mocks.append(httpx.AsyncClient(base_url=str(server.url), timeout=None))
                    proxy.upstream = mocks[-1]
                for scenario in members:
                    await mesh.reset()
                    await play(mesh, scenario, [], seed=seed, judge=False)
                    if mesh.bus is not None:
                        with contextlib.suppress(TimeoutError):  # a consumer stuck: leave it
                            await mesh.bus.drain(DRAIN_S)
            finally:
                for mock in mocks:
                    await mock.aclose()
                await mesh.stop()
        for name, (pact, server) in sorted(servers.items()):
            for mismatch in server.mismatches:
                if isinstance(mismatch, MissingRequest):
                    missing.append((pact, mismatch.request))
                else:
                    problems.append(f"{name}: {_describe(mismatch)}")
    return problems, missing


def _describe(mismatch: Any) -> str:
    """pact-python's own description of a mismatch, on one line."""
    return " ".join(str(mismatch).split())[:600]


def _messages(built: Sequence[BuiltPact], scenarios: Mapping[str, Scenario]) -> list[str]:
    problems: list[str] = []
    pacts = [b for b in built if b.messages]
    if not pacts:
        return problems
    merged: dict[str, dict[str, Any]] = {}
    for scenario in scenarios.values():
        for component, values in scenario.settings.items():
            merged.setdefault(component, {}).update(values)
    with running_mesh(MeshOptions(settings=merged)) as (mesh, loop):
        for pact in pacts:

            def handler(
                body: str | bytes | None, metadata: dict[str, Any], pact: BuiltPact = pact
            ) -> None:
                payload = orjson.loads(str(body) if body is not None else "{}")
                topic = str(metadata.get("topic") or "")
                asyncio.run_coroutine_threadsafe(mesh.reset(), loop).result(30)
                assert mesh.bus is not None
                publish = mesh.bus.publish(
                    topic, str(payload.get("order_id", "")), payload, publisher=pact.provider
                )
                asyncio.run_coroutine_threadsafe(publish, loop).result(30)
                _await_delivery(mesh, pact.consumer, str(payload.get("id", "")))

            for error in pact.pact.verify(handler, "Async", raises=False):
                problems.append(f"{pact.name}: {error.description}: {error.error}")
    return problems


def _await_delivery(mesh: Mesh, group: str, event_id: str) -> None:
    deadline = time.monotonic() + DELIVERY_WAIT_S
    while time.monotonic() < deadline:
        for entry in mesh.journal.events():
            if entry.event_id != event_id:
                continue
            if group in entry.dead_lettered:
                raise RuntimeError(f"{group} could not handle the message (dead-lettered)")
            if group in entry.groups:
                return
        time.sleep(0.02)
    raise RuntimeError(f"{group} did not take the message within {DELIVERY_WAIT_S:g} s")
