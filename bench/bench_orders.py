"""Orders through the gateway under load, with every invariant checked after each level.

The mesh runs in this process (on one CPU when there are two); the client runs in
another (on the other CPU), as a user's load generator would. Per level (8, 32, 64
concurrent clients by default): that many users register and log in, then share
``--orders`` orders (80% ``pm_card_visa``, 20% ``pm_card_chargeDeclined``) as fast as
the gateway answers them. Printed per level: orders/s, p50/p95/p99 of the client's
answer, confirmation-email delay after the answer (p50/p95), the mesh's RSS and CPU
time per order (from the first order, after the users' set-up and its password hashing,
until every confirmation email is out), the garbage collector's share of that CPU time
and its longest pause (ms), and the invariants, checked
from the journal and the APIs (:mod:`ecom_harness.harness.order_ledger`): stock
conserved, exactly one charge kept per confirmed order and none for the others, exactly
one confirmation email per confirmed order.

The baseline, measured in the same run: ``GET /health`` through the same gateway
edge at the same concurrency (the mesh and proxy alone, no saga).

``--duration S`` runs the last level again and again for S seconds (an hour: 3600),
printing every round's row: memory (RSS), orders/s and CPU per order must all stay
flat. Run it past inventory-svc's 15-minute hold (``ttl_seconds``), when the first
reservations fall due: a sweep that read them all made every later request slower.

Run: python bench/bench_orders.py [--levels 8,32,64] [--orders 300] [--duration 0]
        [--kafka local] [--postgres DSN] [--redis URL] [--journal FILE] [--journal-keep N]
        [--sockets] [--max-in-flight N]
Needs nothing beyond the project; the gateway's limits are raised for the run through
its settings (as ``up --rate-limit`` / the admin API would).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ecom_harness._startup import defer_collection
from ecom_harness.harness.journal import DEFAULT_KEEP
from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.harness.order_ledger import OrderLedger, stock_conserved
from ecom_harness.stubs.state._backends import DatabaseUnavailable

SKU = "SKU-1001"
STOCK = 1_000_000
DECLINED_SHARE = 0.2
ADDRESS = {
    "name": "Load Tester",
    "line1": "Torstrasse 112",
    "city": "Berlin",
    "postal_code": "10119",
    "country": "DE",
}
UNLIMITED = {"rate_limit": "1000000/minute", "ip_rate_limit": "1000000/minute"}


# --- the client process -------------------------------------------------------------------


async def _user(client: httpx.AsyncClient, tag: str, index: int) -> str:
    """Register and log in one user; returns its bearer token."""
    email = f"load-{tag}-{index}@example.com"
    creds = {"email": email, "password": "correct-horse-battery"}
    created = await client.post("/v1/auth/register", json={**creds, "name": f"User {index}"})
    if created.status_code != 201:
        raise SystemExit(f"register: {created.status_code} {created.text}")
    login = await client.post("/v1/auth/login", json=creds)
    if login.status_code != 200:
        raise SystemExit(f"login: {login.status_code} {login.text}")
    return str(login.json()["access_token"])


async def _users(url: str, clients: int, tag: str) -> list[str]:
    """``clients`` users registered and logged in, one after another; their tokens."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as setup:
        return [await _user(setup, f"{tag}-{clients}", i) for i in range(clients)]


async def _orders(
    url: str, clients: int, orders: int, tag: str, what: str, *, tokens: list[str] | None
) -> dict[str, Any]:
    """``clients`` workers, each on its own connection (as its own user: ``tokens``),
    sharing ``orders`` requests; returns the answers' latencies (ms), statuses and wall
    time."""
    rng = random.Random(f"{tag}-{clients}")
    tag = f"{tag}-{clients}"
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    pool = [
        httpx.AsyncClient(
            base_url=url,
            limits=limits,
            timeout=120,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        for token in (tokens or [None] * clients)
    ]
    try:
        queue = list(range(orders))
        latencies: list[float] = []
        statuses: dict[str, int] = {}

        async def worker(client: httpx.AsyncClient) -> None:
            while queue:
                n = queue.pop()
                began = time.perf_counter()
                if what == "health":
                    response = await _send(client, "GET", "/health")
                else:
                    card = "pm_card_chargeDeclined" if rng.random() < DECLINED_SHARE else None
                    body = {
                        "items": [{"sku": SKU, "quantity": 1}],
                        "payment_method": card or "pm_card_visa",
                        "shipping_address": ADDRESS,
                    }
                    headers = {"Idempotency-Key": f"{tag}-{n}"}
                    response = await _send(client, "POST", "/v1/orders", json=body, headers=headers)
                latencies.append((time.perf_counter() - began) * 1000)
                key = str(response.status_code)
                statuses[key] = statuses.get(key, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in pool))
        wall = time.perf_counter() - began
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return {"latencies": latencies, "statuses": statuses, "wall": wall}


async def _send(client: httpx.AsyncClient, method: str, path: str, **options: Any) -> Any:
    """One request, sent again once if the connection was closed under it (on a starved
    machine uvicorn's keep-alive timer can fire before it reads a waiting request); an
    order carries its Idempotency-Key, so sending it again is safe."""
    try:
        return await client.request(method, path, **options)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return await client.request(method, path, **options)


def client_main(url: str, clients: int, orders: int, tag: str, what: str) -> None:
    """``what``: "users" (prints their tokens), "orders" (the users' tokens on stdin)
    or "health"; prints the result as JSON."""
    if what == "users":
        print(json.dumps(asyncio.run(_users(url, clients, tag))))
        return
    tokens = json.loads(sys.stdin.read()) if what == "orders" else None
    print(json.dumps(asyncio.run(_orders(url, clients, orders, tag, what, tokens=tokens))))


# --- the mesh process ---------------------------------------------------------------------


def pin(cpu: int) -> list[str]:
    """Pin this process (the mesh) to ``cpu``; the ``taskset`` prefix for the client."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return []
    os.sched_setaffinity(0, {cpu})
    return ["taskset", "-c", str(cpu + 1)]


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_client(prefix: list[str], url: str, *load: str, given: Any = None) -> Any:
    """Run the client process (``load``: clients, orders, tag, what; ``given`` on its
    stdin as JSON) and read its result."""
    command = [*prefix, sys.executable, __file__, "--client", url, *load]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate(json.dumps(given).encode())
    if process.returncode != 0:
        raise SystemExit(f"the client process failed ({process.returncode})")
    return json.loads(out)


async def stock(mesh: Mesh) -> dict[str, Any]:
    headers = {"X-Service-Token": "bench-token"}
    async with httpx.AsyncClient(base_url=mesh.url("inventory-svc"), headers=headers) as c:
        response = await c.get(f"/stock/{SKU}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def settle(mesh: Mesh, ledger: OrderLedger, timeout: float) -> float:
    """Wait until every confirmed order has its email (or ``timeout``); returns seconds."""
    began = time.perf_counter()
    while not ledger.emails_settled() and time.perf_counter() - began < timeout:
        await asyncio.sleep(0.05)
    assert mesh.bus is not None
    await mesh.bus.drain(timeout)
    return time.perf_counter() - began


class GcClock:
    """Time the mesh's process spends in the garbage collector (``gc.callbacks``): its
    share of the level's CPU time, and the longest pause (a full collection of a big heap
    holds every request up at once)."""

    def __init__(self) -> None:
        self.total = self.longest = 0.0
        self._started = 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = time.perf_counter() - self._started
            self.total += took
            self.longest = max(self.longest, took)

    def reset(self) -> None:
        self.total = self.longest = 0.0


GC_CLOCK = GcClock()


async def level(
    mesh: Mesh, prefix: list[str], clients: int, orders: int, tag: str
) -> dict[str, Any]:
    ledger = OrderLedger()
    stop = ledger.listen(mesh.journal)
    try:
        before = (await stock(mesh))["on_hand"]
        load = (str(clients), str(orders), tag)
        tokens = await run_client(prefix, mesh.entry_url, *load, "users")
        cpu = time.process_time()  # the orders' only: not the users' password hashing
        GC_CLOCK.reset()
        result = await run_client(prefix, mesh.entry_url, *load, "orders", given=tokens)
        settled = await settle(mesh, ledger, 60)
        # through the last email: work the mesh put off (events, mails) is counted too
        cpu = (time.process_time() - cpu) * 1000 / orders
        gc_share, gc_longest = GC_CLOCK.total * 1000 / orders / cpu, GC_CLOCK.longest * 1000
        after = await stock(mesh)
    finally:
        stop()
    confirmed = ledger.confirmed()
    problems = ledger.violations()
    problems += stock_conserved({SKU: before}, {SKU: after}, {SKU: len(confirmed)})
    delays = ledger.email_delays()
    return {
        "clients": clients,
        "orders": orders,
        "rate": orders / result["wall"],
        "p50": percentile(result["latencies"], 0.5),
        "p95": percentile(result["latencies"], 0.95),
        "p99": percentile(result["latencies"], 0.99),
        "mail_p50": percentile(delays, 0.5),
        "mail_p95": percentile(delays, 0.95),
        "settled": settled,
        "statuses": result["statuses"],
        "confirmed": len(confirmed),
        "rss": rss_mb(),
        "cpu": cpu,
        "gc_share": gc_share,
        "gc_longest": gc_longest,
        "problems": problems,
    }


async def baseline(mesh: Mesh, prefix: list[str], clients: int, count: int) -> dict[str, Any]:
    result = await run_client(prefix, mesh.entry_url, str(clients), str(count), "health", "health")
    return {
        "rate": count / result["wall"],
        "p50": percentile(result["latencies"], 0.5),
        "p99": percentile(result["latencies"], 0.99),
    }


def show(row: dict[str, Any]) -> None:
    print(
        f"{row['clients']:>7}{row['rate']:>9.1f}{row['p50']:>9.0f}{row['p95']:>9.0f}"
        f"{row['p99']:>9.0f}{row['mail_p50'] * 1000:>10.0f}{row['mail_p95'] * 1000:>10.0f}"
        f"{row['rss']:>8.0f}{row['cpu']:>8.1f}{row['gc_share']:>6.1%}{row['gc_longest']:>7.0f}"
        f"  {row['confirmed']}/{row['orders']}"
        f" {row['statuses']}  {'ok' if not row['problems'] else 'BROKEN'}",
        flush=True,
    )
    for problem in row["problems"][:20]:
        print(f"        invariant broken: {problem}")


async def bench(args: argparse.Namespace) -> int:
    prefix = pin(0)
    gateway: dict[str, object] = {**UNLIMITED}
    if args.max_in_flight is not None:
        gateway["max_in_flight"] = args.max_in_flight
    settings = {"api-gateway": gateway, "inventory-svc": {"stock": {SKU: STOCK}}}
    options = MeshOptions(
        kafka=args.kafka,
        postgres_url=args.postgres,
        redis_url=args.redis,
        settings=settings,
        journal_keep=args.journal_keep,
        in_process_edges=not args.sockets,
        **({"journal_file": args.journal} if args.journal else {}),
    )
    levels = [int(n) for n in args.levels.split(",")]
    run = secrets.token_hex(3)  # users of this run: a kept PostgreSQL has the last run's
    broken = 0
    async with Mesh(options) as mesh:
        real = [("kafka", args.kafka), ("postgres", args.postgres), ("redis", args.redis)]
        backends = "+".join(name for name, given in real if given) or "embedded defaults"
        print(f"orders through the gateway ({backends}), {args.orders} per level, "
              f"{DECLINED_SHARE:.0%} declined; RSS at start {rss_mb():.0f} MB")  # fmt: skip
        for clients in levels:
            base = await baseline(mesh, prefix, clients, args.orders * 3)
            print(f"baseline GET /health at {clients}: {base['rate']:.0f}/s, "
                  f"p50 {base['p50']:.1f} ms, p99 {base['p99']:.1f} ms")  # fmt: skip
        print(f"{'clients':>7}{'ord/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
              f"{'mail p50':>10}{'mail p95':>10}{'RSS MB':>8}{'CPU ms':>8}{'GC':>6}{'GC max':>7}"
              "  confirmed/orders")  # fmt: skip
        for index, clients in enumerate(levels):
            row = await level(mesh, prefix, clients, args.orders, f"{run}-l{index}")
            show(row)
            broken += bool(row["problems"])
        if args.duration:
            clients = levels[-1]
            print(f"long run: {clients} clients for {args.duration:.0f} s")
            began, rounds = time.perf_counter(), 0
            while time.perf_counter() - began < args.duration:
                row = await level(mesh, prefix, clients, args.orders, f"{run}-r{rounds}")
                rounds += 1
                print(f"  after {time.perf_counter() - began:>6.0f} s, round {rounds}: ", end="")
                show(row)
                broken += bool(row["problems"])
    print("every invariant held" if not broken else f"invariants broken in {broken} level(s)")
    return 1 if broken else 0


def run_loop(main: Any, loop: str) -> Any:
    """Run ``main`` on asyncio's own loop or on uvloop (as ``up`` does when it can)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default="8,32,64")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--duration", type=float, default=0.0, help="seconds of long run")
    parser.add_argument("--kafka")
    parser.add_argument("--postgres")
    parser.add_argument("--redis")
    parser.add_argument("--journal", type=Path, help="stream the journal to this file")
    parser.add_argument(
        "--journal-keep", type=int, default=DEFAULT_KEEP, help="journal entries kept in memory"
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        help="the gateway's admission bound (default: the gateway's; 0: no bound, as "
        "before issue 15's admission), for a comparison",
    )
    parser.add_argument(
        "--sockets",
        action="store_true",
        help="stubs reach their edges' proxies over loopback TCP (as before issue 15's "
        "in-process edges), for a comparison",
    )
    parser.add_argument("--client", nargs=5, metavar=("URL", "N", "ORDERS", "TAG", "WHAT"))
    args = parser.parse_args()
    if args.client:
        url, clients, orders, tag, what = args.client
        client_main(url, int(clients), int(orders), tag, what)
        return
    defer_collection()  # the collector as under `up`: its serving settings once the mesh serves
    try:
        raise SystemExit(run_loop(bench(args), args.loop))
    except DatabaseUnavailable as exc:  # e.g. another mesh holds the databases
        raise SystemExit(f"bench_orders.py: {exc}") from None


if __name__ == "__main__":
    main()
