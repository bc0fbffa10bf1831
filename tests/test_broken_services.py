"""The corpus of broken services (``tests/real_services``): every deliberately broken
implementation is caught by the scenarios, with the expectations its deviation breaks,
and the correct implementations pass all four.

Each variant is a process of its own, started the way a team's CI would: ``ecom-harness
run SCENARIO... --real-cmd COMPONENT='python -m real_services VARIANT' --json FILE``. The
harness gives it the environment ``ecom-harness env`` prints (its port, its peers' URLs
through the mesh's proxies, Kafka, its database, Redis), waits for its port (a variant
listens only once its Kafka client is connected or its consumer group joined), runs the
scenarios and stops it by its handle. Each runs in a directory of its own (its SQLite
database lives there).

A correct service runs all four scenarios; a broken one the scenarios its registry entry
names, and every failed expectation must be one the entry names (and each it names must
fail): a variant caught for another reason (a crash, an unrelated failure) is not caught
"right".

Speed: the variants run a few at a time (one mesh, one service and, where the service
uses Kafka, one Tansu broker each). order-svc and notify-svc publish or consume Kafka
topics, so their meshes run ``--kafka local``; the gateway needs none but Redis of its
own: a private ``redis-server`` on loopback with one database per gateway variant, since
runs sharing one database would clear each other's sessions.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from real_services.variants import VARIANTS, Variant

from conftest import REPO, free_port_base

SCENARIOS = ("cache-hit", "circuit-breaker", "happy-path", "payment-failure")  # as `run all`
KAFKA_USERS = {"order-svc", "notify-svc"}  # publish or consume topics: the mesh needs a broker
AT_ONCE = 4  # variants run concurrently (each mostly waits: brokers, deadlines)
START_WITHIN_S = 30.0
RUN_WITHIN_S = 120.0


@dataclass
class Outcome:
    """What a variant's run showed: the failed expectation ids per scenario, and what
    to show when an assertion about it fails."""

    variant: Variant
    scenarios: tuple[str, ...]
    failed: dict[str, list[str]] = field(default_factory=dict)  # scenario -> expectation ids
    # "scenario/id" -> (what, expected, observed) of each failure
    messages: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def caught(self) -> set[str]:
        return {f"{scenario}/{eid}" for scenario, ids in self.failed.items() for eid in ids}

    def explain(self) -> str:
        lines = [f"{self.variant.name}: {self.error or ''}"]
        lines += [
            f"  {key}: {what}: expected {expected}; observed {observed}"
            for key, failures in self.messages.items()
            for what, expected, observed in failures
        ]
        return "\n".join(lines)


def scenarios_of(variant: Variant) -> tuple[str, ...]:
    """All four for a correct service (as ``run all``); the ones that must catch a broken one."""
    return SCENARIOS if variant.correct else variant.scenarios


def judged(outcome: Outcome) -> tuple[list[str], list[str]]:
    """(patterns of ``caught_by`` no failure matched, failures no pattern explains)."""
    patterns, caught = outcome.variant.caught_by, sorted(outcome.caught())
    explaining = (*patterns, *outcome.variant.may_also_fail)
    missing = [p for p in patterns if not any(fnmatchcase(c, p) for c in caught)]
    unexplained = [c for c in caught if not any(fnmatchcase(c, p) for p in explaining)]
    return missing, unexplained


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Redis on loopback for this module's gateways, stopped by its handle."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (the suite's Redis tests use the same server)"
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "redis-server"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class PortBases:
    """Port bases for concurrent meshes: free when picked, and never handed out twice."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def take(self) -> int:
        while True:
            base = free_port_base()
            if base not in self.taken:
                self.taken.add(base)
                return base


class SetUpFailed(Exception):
    """The variant could not be judged (the run did not finish, or not with a result)."""


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM through the handle; SIGKILL if it does not exit in time."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


async def run_with(variant: Variant, options: list[str], workdir: Path) -> dict[str, Any]:
    """``ecom-harness run SCENARIO... --real-cmd COMPONENT='python -m real_services NAME'
    --json FILE`` in ``workdir``: the harness starts the variant with the environment
    ``ecom-harness env`` gives it (its SQLite file lands in ``workdir``), waits for its
    port, runs the scenarios and stops it by its handle. The JSON result."""
    report = workdir / "run.json"
    command = shlex.join([sys.executable, "-m", "real_services", variant.name])
    run = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "ecom-harness"),
        "run",
        *scenarios_of(variant),
        *options,
        "--real-cmd",
        f"{variant.component}={command}",
        "--startup-timeout",
        str(START_WITHIN_S),
        "--json",
        str(report),
        cwd=workdir,
        env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO / "tests")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(run.communicate(), RUN_WITHIN_S)
    except TimeoutError:
        await stop(run)
        raise SetUpFailed(f"the run did not finish within {RUN_WITHIN_S} s") from None
    (workdir / "run.log").write_bytes(output)
    if run.returncode not in (0, 1) or not report.exists():
        raise SetUpFailed(f"the run exited {run.returncode}: {output.decode()[-3000:]}")
    document: dict[str, Any] = json.loads(report.read_text())
    return document


async def run_variant(variant: Variant, base: int, redis_url: str, workdir: Path) -> Outcome:
    """Run the variant's scenarios with it swapped in; what failed, and why."""
    outcome = Outcome(variant, scenarios_of(variant))
    began = time.monotonic()
    options = ["--port-base", str(base)]
    if variant.component in KAFKA_USERS:
        options += ["--kafka", "local"]
    if variant.component == "api-gateway":
        options += ["--redis", redis_url]
    try:
        document = await run_with(variant, options, workdir)
    except SetUpFailed as failed:
        outcome.error = str(failed)
        return outcome
    finally:
        outcome.seconds = time.monotonic() - began
    for scenario in document["scenarios"]:
        if scenario["error"]:
            outcome.error = f"{scenario['name']}: {scenario['error']}"
        failures = [e for e in scenario["expectations"] if not e["passed"]]
        outcome.failed[scenario["name"]] = [e["id"] for e in failures]
        for e in failures:
            outcome.messages.setdefault(f"{scenario['name']}/{e['id']}", []).append(
                (e["what"], e["expected"], e["observed"])
            )
    return outcome


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def outcomes(
    redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Outcome]]:
    """Every variant of the corpus run once, a few at a time."""
    bases, gate = PortBases(), asyncio.Semaphore(AT_ONCE)
    gateway_dbs = iter(range(16))

    async def one(variant: Variant) -> Outcome:
        redis_url = (
            f"{redis_server}/{next(gateway_dbs)}" if variant.component == "api-gateway" else ""
        )
        async with gate:
            for _ in range(3):  # a port of the plan taken meanwhile by another process
                workdir = tmp_path_factory.mktemp(variant.name.replace(":", "-"))
                outcome = await run_variant(variant, bases.take(), redis_url, workdir)
                if "Address already in use" not in (outcome.error or ""):
                    break
            return outcome

    # The longest first: correct services run all four, Kafka meshes start slower.
    ordered = sorted(
        VARIANTS.values(), key=lambda v: (not v.correct, v.component not in KAFKA_USERS)
    )
    done = await asyncio.gather(*(one(v) for v in ordered))
    yield {outcome.variant.name: outcome for outcome in done}


CORRECT = [name for name, v in VARIANTS.items() if v.correct]
BROKEN = [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=v.gap)) if v.gap else name
    for name, v in VARIANTS.items()
    if not v.correct
]
in_module_loop = pytest.mark.asyncio(loop_scope="module")


def test_the_corpus_covers_the_three_services_with_at_least_twelve_broken_variants() -> None:
    broken = [v for v in VARIANTS.values() if not v.correct]
    components = {v.component for v in broken}
    assert {"order-svc", "api-gateway", "notify-svc"} <= components
    assert len([v for v in broken if not v.gap]) >= 12
    assert {v.component for v in VARIANTS.values() if v.correct} == components
    for v in broken:
        assert v.broken, f"{v.name} does not say what is broken"
        assert v.caught_by, f"{v.name} names no expectation that catches it"
        assert set(v.scenarios) <= set(SCENARIOS), f"{v.name}: unknown scenario in {v.caught_by}"


@in_module_loop
@pytest.mark.parametrize("name", CORRECT)
async def test_a_correct_service_passes_all_four_scenarios(
    outcomes: dict[str, Outcome], name: str
) -> None:
    outcome = outcomes[name]
    assert outcome.error is None, outcome.explain()
    assert sorted(outcome.failed) == sorted(SCENARIOS), outcome.explain()
    assert outcome.caught() == set(), outcome.explain()


@in_module_loop
@pytest.mark.parametrize("name", BROKEN)
async def test_a_broken_service_fails_exactly_the_expectations_it_breaks(
    outcomes: dict[str, Outcome], name: str
) -> None:
    outcome = outcomes[name]
    assert outcome.error is None, outcome.explain()
    missing, unexplained = judged(outcome)
    assert not missing, f"not caught by {missing}\n{outcome.explain()}"
    assert not unexplained, f"failed for another reason: {unexplained}\n{outcome.explain()}"
    for failures in outcome.messages.values():  # each says what was expected, and what came
        assert all(what and expected and observed for what, expected, observed in failures)
