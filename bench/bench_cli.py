"""How fast the CLI answers, as whole processes: ``ecom-harness --help``, ``specs lint`` of
the shipped specs, and ``stubs serve --spec FILE`` until its first answered request.

Baselines measured in the same run: the interpreter alone (``python -c pass``) for the
first two, and a bare Starlette app under uvicorn for the stub's time to first answer.
Prints the median of N runs of each and the ratio to its baseline. Each is run once
unmeasured first, and all run as a user's shell runs them (bytecode cached: _user_env.py).

    python bench/bench_cli.py [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
from _user_env import user_env

from ecom_harness.specs import shipped_spec

STARLETTE_APP = textwrap.dedent(
    """
    import sys
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request):
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def whole_process(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False, timeout=120, env=user_env())
    return time.perf_counter() - started


def first_answer(argv: Callable[[int], list[str]], path: str) -> float:
    """Seconds from spawning a server to its first HTTP answer (any status)."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=user_env()
    )
    try:
        with httpx.Client(timeout=1.0) as client:
            deadline = started + 30
            while time.perf_counter() < deadline:
                try:
                    client.get(f"http://127.0.0.1:{port}{path}")
                    return time.perf_counter() - started
                except httpx.TransportError:
                    time.sleep(0.005)
        raise RuntimeError(f"{argv(port)} never answered")
    finally:
        process.terminate()
        process.wait(timeout=10)


def median(runs: int, measure: Callable[[], float]) -> float:
    measure()  # warm the OS page cache and the bytecode caches
    return statistics.median(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    cli = shutil.which("ecom-harness") or sys.exit("ecom-harness is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp, "catalog.yaml")
        spec.write_bytes(shipped_spec("catalog-svc").read_bytes())
        app = Path(tmp, "bare_starlette.py")
        app.write_text(STARLETTE_APP)
        interpreter = median(runs, lambda: whole_process([sys.executable, "-c", "pass"]))
        starlette = median(
            runs, lambda: first_answer(lambda p: [sys.executable, str(app), str(p)], "/health")
        )
        rows = [
            (
                "ecom-harness --help",
                median(runs, lambda: whole_process([cli, "--help"])),
                interpreter,
            ),
            (
                "ecom-harness specs lint",
                median(runs, lambda: whole_process([cli, "specs", "lint"])),
                interpreter,
            ),
            (
                "stubs serve --spec FILE -> first answer",
                median(
                    runs,
                    lambda: first_answer(
                        lambda p: [cli, "stubs", "serve", "--spec", str(spec), "--port", str(p)],
                        "/health",
                    ),
                ),
                starlette,
            ),
        ]
    print(
        f"median of {runs} runs each; baselines: python -c pass {interpreter * 1000:.0f} ms, "
        f"bare Starlette to first answer {starlette * 1000:.0f} ms"
    )
    print(f"{'what':45} {'ms':>7} {'x baseline':>11}")
    for name, seconds, baseline in rows:
        print(f"{name:45} {seconds * 1000:7.0f} {seconds / baseline:11.1f}")


if __name__ == "__main__":
    main()
