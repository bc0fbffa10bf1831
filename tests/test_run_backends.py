"""The four scenarios on the real backends: Kafka (the local Tansu broker), Redis and
PostgreSQL, through the runner's Python API; and the shape of the event stream every
reporter consumes. (On the embedded defaults they run in test_run_cli.py.)"""

from __future__ import annotations

from collections import Counter

import pytest

from ecom_harness.harness.mesh import MeshOptions
from ecom_harness.harness.run_events import (
    ExpectationChecked,
    JournalEntrySeen,
    RunEvent,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
    StepNote,
    StepSent,
)
from ecom_harness.harness.runner import RunPlan, group_by_settings, run_scenarios
from ecom_harness.harness.scenario_files import load_scenarios
from ecom_harness.stubs import Backends


def failures(events: list[RunEvent]) -> str:
    lines = []
    for event in events:
        if isinstance(event, ExpectationChecked) and not event.result.passed:
            r = event.result
            lines.append(f"{event.scenario} {r.what}: expected {r.expected}; observed {r.observed}")
    return "\n".join(lines)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_all_four_pass_on_kafka_redis_and_postgresql(backends: Backends) -> None:
    scenarios = list(load_scenarios().values())
    options = MeshOptions(
        kafka="local",
        redis_url=backends.redis_url,
        postgres_url=backends.database_url,
        database_prefix=backends.database_prefix,
    )
    events: list[RunEvent] = []
    result = await run_scenarios(RunPlan(scenarios, options, seed=1), [events.append])
    assert result.setup_error is None
    assert result.exit_code == 0, failures(events)
    # one mesh for all four: their settings agree
    assert len(group_by_settings(scenarios)) == 1
    # the event stream: started, per scenario started .. finished, finished
    assert isinstance(events[0], RunStarted) and events[0].mesh["kafka"] == "local"
    assert isinstance(events[-1], RunFinished) and events[-1].result is result
    kinds = Counter(type(e) for e in events)
    assert kinds[ScenarioStarted] == kinds[ScenarioFinished] == 4
    assert kinds[ExpectationChecked] == sum(len(s.expectations) for s in result.scenarios)
    assert kinds[JournalEntrySeen] == sum(len(s.journal) for s in result.scenarios)
    assert kinds[StepSent] >= sum(
        1 for s in scenarios for step in s.steps if step.kind == "request"
    )
    for scenario in result.scenarios:
        # isolation: each journal is the scenario's own (no event of another's orders)
        events_of_others = {e["key"] for e in scenario.journal if e["kind"] == "event"} & {
            e["key"]
            for other in result.scenarios
            if other is not scenario
            for e in other.journal
            if e["kind"] == "event"
        }
        assert not events_of_others, scenario.name


@pytest.mark.timeout(120)
async def test_on_the_embedded_defaults_the_others_fill_the_waiting_scenario_s_wait() -> None:
    """Side by side (embedded defaults): circuit-breaker's mesh starts first, and the
    other scenarios start only once it waits (its cool-down), so they fill the wait
    instead of slowing its first steps; all pass."""
    known = load_scenarios()
    scenarios = [known["cache-hit"], known["circuit-breaker"], known["payment-failure"]]
    events: list[RunEvent] = []
    result = await run_scenarios(RunPlan(scenarios, seed=1), [events.append])
    assert result.exit_code == 0, failures(events)
    started = [e.scenario for e in events if isinstance(e, ScenarioStarted)]
    assert started[0] == "circuit-breaker"
    cool_down = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, StepNote) and (e.scenario, e.step) == ("circuit-breaker", "cool_down")
    )
    others = [
        i
        for i, e in enumerate(events)
        if isinstance(e, ScenarioStarted) and e.scenario != "circuit-breaker"
    ]
    assert len(others) == 2 and min(others) > cool_down
    assert [s.name for s in result.scenarios] == [s.name for s in scenarios]  # as asked
