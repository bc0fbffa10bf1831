"""Start-up of the whole mesh and the latency a recording proxy adds per hop, each against
a baseline measured in the same run (issue 5: start-up under 1 s, under 1 ms per hop).

1. Start-up, on embedded defaults: ``Mesh()`` + ``start()`` until the first 200 from
   ``GET /health`` through the client's edge proxy, and ``stop()``; median of N runs
   (the first, cold run is printed apart: it also pays for imports and caches).
   Baseline: a ``StubHost`` of the same components on the same in-process bus, without
   the mesh (no proxies, no sockets), until its gateway answers ``GET /health`` in-process.
2. Proxy overhead: ``GET /health`` on the gateway at its own address and through the
   ``client->api-gateway`` proxy, sequential requests from a client in another process
   (one keep-alive connection per target, the two targets interleaved in rounds so both
   see the same machine). The mesh runs here, on one CPU; the client on another when
   there are two. Per-hop added p50 = p50(through proxy) - p50(direct).

Run: python bench/bench_mesh.py [--starts 10] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial

import httpx

from ecom_harness.harness.mesh import Mesh
from ecom_harness.stubs import InMemoryBus, StubHost

GATEWAY, EDGE = "api-gateway", "client->api-gateway"
ROUND = 100  # requests per target before switching to the other


# --- 1. start-up ----------------------------------------------------------------------------


async def mesh_start_stop() -> tuple[float, float]:
    """(ms from nothing to the first healthy answer through the edge proxy, ms to stop)."""
    began = time.perf_counter()
    mesh = Mesh()
    await mesh.start()
    try:
        async with httpx.AsyncClient(base_url=mesh.url(EDGE)) as client:
            (await client.get("/health")).raise_for_status()
        ready = time.perf_counter()
    finally:
        await mesh.stop()
    return (ready - began) * 1000, (time.perf_counter() - ready) * 1000


async def host_start_stop(components: list[str]) -> tuple[float, float]:
    """The baseline: the same stubs and bus in one StubHost, reached in-process."""
    began = time.perf_counter()
    host = StubHost.shipped(components, bus=InMemoryBus())
    await host.start()
    try:
        transport = httpx.ASGITransport(app=host.stubs[GATEWAY].app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            (await client.get("/health")).raise_for_status()
        ready = time.perf_counter()
    finally:
        await host.stop()
    return (ready - began) * 1000, (time.perf_counter() - ready) * 1000


async def startups(
    run: Callable[[], Awaitable[tuple[float, float]]], count: int
) -> tuple[tuple[float, float], float, float]:
    """(the cold run's figures, median start ms, median stop ms) over ``count`` warm runs."""
    cold = await run()
    warm = [await run() for _ in range(count)]
    return cold, statistics.median(s for s, _ in warm), statistics.median(s for _, s in warm)


# --- 2. proxy overhead ----------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def client_main(direct: str, proxied: str, count: int) -> None:
    """In the client process: time ``count`` sequential GET /health per target, each
    target on its own connection pool, and print the samples (ms) as JSON."""
    targets = {"direct": direct, "proxied": proxied}
    clients = {name: httpx.Client(base_url=url) for name, url in targets.items()}
    samples: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for client in clients.values():  # warm-up: connections, caches
            for _ in range(ROUND):
                client.get("/health").raise_for_status()
        while len(samples["proxied"]) < count:
            for name, client in clients.items():
                for _ in range(ROUND):
                    began = time.perf_counter()
                    client.get("/health").raise_for_status()
                    samples[name].append((time.perf_counter() - began) * 1000)
    finally:
        for client in clients.values():
            client.close()
    print(json.dumps(samples))


def pin(cpu: int) -> list[str]:
    """Pin this process (the mesh) to ``cpu`` and return the ``taskset`` prefix that puts
    a child on the next one; nothing either way with a single CPU."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return []
    os.sched_setaffinity(0, {cpu})
    return ["taskset", "-c", str(cpu + 1)]


async def proxy_latencies(count: int) -> dict[str, list[float]]:
    client_cpu = pin(0)
    async with Mesh() as mesh:
        command = [
            *client_cpu,
            sys.executable,
            __file__,
            "--client",
            mesh.url(GATEWAY),
            mesh.url(EDGE),
            str(count),
        ]
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"the client process failed ({process.returncode})")
        journaled = len(mesh.journal.interactions(EDGE))
    samples: dict[str, list[float]] = json.loads(out)
    if journaled < len(samples["proxied"]):  # the proxy really was on the path
        raise SystemExit(f"only {journaled} of the proxied requests were journaled")
    return samples


# --- report ---------------------------------------------------------------------------------


def report_startup(count: int) -> None:
    mesh = asyncio.run(startups(mesh_start_stop, count))
    host = asyncio.run(startups(partial(host_start_stop, Mesh().hosted), count))
    print(f"start-up, embedded defaults, median of {count} (cold run apart)")
    print(f"{'':<26}{'cold ms':>9}{'start ms':>10}{'stop ms':>9}")
    for name, ((cold, _), start, stop) in (("mesh (to health via edge)", mesh),
                                          ("StubHost only (baseline)", host)):  # fmt: skip
        print(f"{name:<26}{cold:>9.0f}{start:>10.0f}{stop:>9.0f}")
    print(f"mesh / baseline start: {mesh[1] / host[1]:.2f}x (target: mesh start < 1000 ms)")


def report_proxy(count: int) -> None:
    samples = asyncio.run(proxy_latencies(count))
    figures = {name: (percentile(s, 0.5), percentile(s, 0.99)) for name, s in samples.items()}
    print(f"\nGET /health on the gateway, {count} sequential requests per target")
    print(f"{'':<26}{'p50 ms':>9}{'p99 ms':>9}")
    for name, label in (("direct", "direct (baseline)"), ("proxied", "through edge proxy")):
        print(f"{label:<26}{figures[name][0]:>9.3f}{figures[name][1]:>9.3f}")
    added = figures["proxied"][0] - figures["direct"][0]
    ratio = figures["proxied"][0] / figures["direct"][0]
    print(
        f"added per hop at p50: {added:.3f} ms (target < 1 ms); proxied / direct p50: {ratio:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--client", nargs=3, metavar=("DIRECT", "PROXIED", "COUNT"))
    args = parser.parse_args()
    if args.client:
        direct, proxied, count = args.client
        client_main(direct, proxied, int(count))
        return
    report_startup(args.starts)
    report_proxy(args.requests)


if __name__ == "__main__":
    main()
