"""``ecom-harness run all`` on the embedded defaults, as a whole process from a cold start
(interpreter, imports, mesh start, the four scenarios, reports), against baselines
measured in the same run: ``ecom-harness --help`` (the interpreter and the CLI alone) and
``python -c pass``. Also how the run splits: the scenarios' own time from the JSON report
(of which the circuit breaker's cool-down is a wait the wire dictates: its Retry-After).

Target (issue 10): under 3 s wall time on the 2-core machine. Prints the median of N runs,
after one unmeasured run, each run as a user's shell runs it (bytecode cached: _user_env.py).

    python bench/bench_run.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _user_env import user_env

CLI = [sys.executable, "-c", "from ecom_harness.cli.main import main; main()"]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def whole_process(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=user_env(NO_COLOR="1"),
    )
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    figures: dict[str, list[float]] = {"python -c pass": [], "--help": [], "run all": []}
    cpu: list[float] = []
    scenario_ms: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "run.json"
        whole_process([*CLI, "run", "all"])  # unmeasured: writes the bytecode caches
        for _ in range(runs):  # interleaved, so all three see the same machine
            figures["python -c pass"].append(whole_process([sys.executable, "-c", "pass"])[0])
            figures["--help"].append(whole_process([*CLI, "--help"])[0])
            before = cpu_of_children()
            took, done = whole_process([*CLI, "run", "all", "--json", str(report)])
            cpu.append(cpu_of_children() - before)
            if done.returncode != 0:
                sys.exit(f"run all failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
            figures["run all"].append(took)
            for scenario in json.loads(report.read_text())["scenarios"]:
                scenario_ms.setdefault(scenario["name"], []).append(scenario["duration_ms"])
    median = {name: statistics.median(times) for name, times in figures.items()}
    print(f"median of {runs} runs, whole processes, {os.cpu_count()} CPUs")
    for name, value in median.items():
        print(f"  {name:16} {value:6.2f} s")
    scenarios = {name: statistics.median(ms) / 1000 for name, ms in scenario_ms.items()}
    for name, value in scenarios.items():
        print(f"    scenario {name:18} {value:5.2f} s")
    print(f"  run all - --help baseline: {median['run all'] - median['--help']:.2f} s")
    print(f"  run all CPU time (user + system): {statistics.median(cpu):.2f} s")
    longest = max(scenarios.values())
    print(
        f"  imports, mesh start and stop (run all - the longest scenario, {longest:.2f} s; "
        f"scenarios run side by side): {median['run all'] - longest:.2f} s"
    )
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")
    verdict = "meets" if median["run all"] < 3.0 else "misses"
    print(f"  target < 3 s: {verdict} ({median['run all']:.2f} s)")


if __name__ == "__main__":
    main()
