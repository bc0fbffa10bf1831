"""Throughput and latency of one stub against a bare Starlette app and a raw ASGI app,
measured in the same run with wrk (a load generator in another process).

Each server runs alone in its own process under uvicorn (uvloop, httptools), pinned to
one CPU while wrk (one thread) runs on another; wrk drives GET and POST with 32
connections. Printed: requests/s, p50 and p99 latency, and the
ratios against the bare Starlette app.

Needs ``wrk`` (Debian: apt-get install wrk).
Run: python bench/bench_stub.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_servers import GET_PATH, POST_PATH

HERE = Path(__file__).resolve().parent
_POST_BODY = {
    "order_id": "ord_7Hq2Kd9xLm",
    "items": [{"sku": "SKU-1001", "quantity": 2}],
    "address": {
        "name": "Anna Schmidt",
        "line1": "Hauptstr. 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
    },
}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _pinned(cpu: int) -> list[str]:
    """``taskset -c CPU`` when available with two or more CPUs: the server and wrk then
    each have a core of their own instead of competing for both (steadier figures)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(match[1]) * _UNITS[match[2]] if match else float("nan")


def _wrk(url: str, method: str, duration: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if method == "POST":
            body = json.dumps(_POST_BODY).replace("\\", "\\\\").replace('"', '\\"')
            script.write(
                f'wrk.method = "POST"\nwrk.body = "{body}"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["X-Service-Token"] = "bench"\n'
            )
        else:
            script.write('wrk.headers["X-Service-Token"] = "bench"\n')
    out = subprocess.run(
        [
            *_pinned(1),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(script.name).unlink()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if errors:
        raise SystemExit(f"{url} answered {errors[1]} non-2xx responses:\n{out.stdout}")
    return {
        "rps": float(rps[1]) if rps else 0.0,
        "p50": _latency_ms(out.stdout, "50"),
        "p99": _latency_ms(out.stdout, "99"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for kind in ("raw", "starlette", "stub"):
        port = _free_port()
        server = subprocess.Popen(
            [*_pinned(0), sys.executable, str(HERE / "bench_servers.py"), kind, str(port)]
        )
        try:
            _wait_for(port)
            base = f"http://127.0.0.1:{port}"
            _wrk(base + GET_PATH, "GET", 2, args.connections)  # warm-up
            results[kind] = {
                "GET": _wrk(base + GET_PATH, "GET", args.duration, args.connections),
                "POST": _wrk(base + POST_PATH, "POST", args.duration, args.connections),
            }
        finally:
            server.terminate()
            server.wait(10)
    pinning = "server and wrk on separate CPUs" if _pinned(0) else "unpinned"
    print(
        f"{args.connections} connections, {args.duration} s per run, one uvicorn worker "
        f"each, {pinning}"
    )
    print(f"{'server':<11}{'method':<7}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'x starlette':>13}")
    for kind, by_method in results.items():
        for method, figures in by_method.items():
            ratio = figures["rps"] / results["starlette"][method]["rps"]
            print(
                f"{kind:<11}{method:<7}{figures['rps']:>10.0f}{figures['p50']:>9.2f}"
                f"{figures['p99']:>9.2f}{ratio:>13.2f}"
            )


if __name__ == "__main__":
    main()
