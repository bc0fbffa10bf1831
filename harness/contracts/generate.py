"""``contracts generate``: the pacts of every edge the scenarios exercise.

1. **Harvest**: run the scenarios on the embedded mesh (a fixed seed), keep each journal.
2. **Plan and build**: one interaction per edge, operation and status (or topic and
   message type), canonical values, matchers from the provider's schema, provider states
   from the scenario's ``given`` (:mod:`.plan`, :mod:`.build`).
3. **Exercise the consumers**: the scenarios run again with every consumer calling
   pact-python's mock server in place of its provider, one mock per edge; a consumer that
   sends a request its pact does not describe fails the generation (:mod:`.consumer_run`).
   Message pacts are handed to the consumer's simulator, which must accept them.
4. **Write**: ``contracts/CONSUMER-PROVIDER.json``, formatted the same way every time;
   ``--check`` compares instead of writing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ecom_harness.harness.mesh import MeshOptions
from ecom_harness.harness.runner import RunPlan, run_scenarios
from ecom_harness.harness.scenario_files import Scenario
from ecom_harness.specs import load_topology

from .build import BuiltPact, build_pacts
from .plan import ScenarioJournal, plan_pacts
from .spec_index import SpecIndex

__all__ = ["GenerateError", "Generated", "generate_pacts", "harvest", "render_pact", "stale_pacts"]

SEED = 0


class GenerateError(RuntimeError):
    """The pacts cannot be made (a scenario failed, a consumer broke its pact)."""


@dataclass(slots=True)
class Generated:
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> content
    consumer_problems: list[str] = field(default_factory=list)


async def harvest(
    scenarios: Mapping[str, Scenario], options: MeshOptions | None = None, seed: int = SEED
) -> list[ScenarioJournal]:
    """Run the scenarios; every one must pass (a pact is made from a correct run only)."""
    plan = RunPlan(scenarios=list(scenarios.values()), options=options or MeshOptions(), seed=seed)
    result = await run_scenarios(plan, [])
    if result.setup_error:
        raise GenerateError(f"the scenarios could not run: {result.setup_error}")
    failed = [s.name for s in result.scenarios if not s.passed]
    if failed:
        raise GenerateError(
            f"scenario(s) {', '.join(failed)} failed: pacts are made from a passing run"
        )
    return [
        ScenarioJournal(s.name, scenarios[s.name].given, s.journal)
        for s in sorted(result.scenarios, key=lambda s: s.name)
    ]


def render_pact(raw: bytes) -> bytes:
    """The one formatting of a pact file: sorted keys, two-space indent, final newline."""
    return (
        json.dumps(json.loads(raw), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()


def _write(built: list[BuiltPact]) -> dict[str, bytes]:
    files = {}
    with tempfile.TemporaryDirectory(prefix="ecom-pacts-") as tmp:
        for pact in built:
            pact.pact.write_file(tmp, overwrite=True)
            path = Path(tmp) / f"{pact.name}.json"
            files[path.name] = render_pact(path.read_bytes())
    return files


async def generate_pacts(
    scenarios: Mapping[str, Scenario], index: SpecIndex, *, exercise: bool = True
) -> Generated:
    journals = await harvest(scenarios)
    clients = {c.name for c in load_topology().components.values() if c.kind == "client"}
    variants = await harvest(scenarios, seed=SEED + 1)  # what changes with the seed
    http, messages = plan_pacts(journals, clients, variants)
    built = build_pacts(http, messages, index)
    generated = Generated()
    if exercise:
        from .consumer_run import exercise_consumers

        generated.consumer_problems = await exercise_consumers(
            built, scenarios, SEED, index, _edges_of(journals)
        )
    generated.files = _write(built)
    return generated


def _edges_of(journals: list[ScenarioJournal]) -> dict[str, set[str]]:
    return {
        j.scenario: {f"{e['caller']}->{e['callee']}" for e in j.entries if e.get("kind") == "http"}
        for j in journals
    }


def stale_pacts(folder: Path, files: Mapping[str, bytes]) -> list[str]:
    """What differs between the committed pacts and freshly generated ones, one line each."""
    problems = []
    committed = {p.name for p in folder.glob("*.json")}
    for name, content in sorted(files.items()):
        path = folder / name
        if not path.exists():
            problems.append(f"{path}: missing (a scenario now exercises this edge)")
        elif path.read_bytes() != content:
            problems.append(f"{path}: out of date")
    for name in sorted(committed - set(files)):
        problems.append(f"{folder / name}: no scenario exercises this edge any more")
    return problems
