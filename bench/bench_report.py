"""What the HTML player costs for a long run: the time to build the report and its size,
for journals of a few hundred to a few thousand entries, against baselines measured in
the same run: serialising the journal itself with orjson (the floor: the data alone)
and laying out the topology once (what every report pays whatever its length).

Run: python bench/bench_report.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson

from ecom_harness.harness.journal import REDACTED, EventEntry, Interaction
from ecom_harness.harness.viewer import RunRecord, layout_topology, report_html
from ecom_harness.specs import load_topology

SIZES = (250, 1000, 4000)


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _journal(n: int) -> list[dict[str, Any]]:
    """A journal shaped like the happy path's: mostly HTTP exchanges, an event in four."""
    entries: list[dict[str, Any]] = []
    for seq in range(1, n + 1):
        if seq % 4 == 0:
            entries.append(
                asdict(
                    EventEntry(
                        seq,
                        1.8e9 + seq / 100,
                        "order-svc",
                        "orders",
                        f"ord_{seq}",
                        "order.placed",
                        f"evt_{seq}",
                        0,
                        seq,
                        {"id": f"evt_{seq}", "order_id": f"ord_{seq}", "total": 4200},
                        ["notify-svc"],
                    )
                )
            )
            continue
        entries.append(
            asdict(
                Interaction(
                    seq,
                    1.8e9 + seq / 100,
                    "order-svc",
                    "payment-svc",
                    "createPayment",
                    "POST",
                    "/payments",
                    "",
                    {
                        "host": "127.0.0.1:20005",
                        "x-service-token": REDACTED,
                        "idempotency-key": f"k-{seq}",
                        "content-type": "application/json",
                    },
                    {
                        "order_id": f"ord_{seq}",
                        "amount": 4200,
                        "currency": "eur",
                        "payment_method": "pm_card_visa",
                    },
                    201,
                    {"content-type": "application/json"},
                    {"payment_id": f"pay_{seq}", "status": "succeeded", "amount": 4200},
                    12.5,
                )
            )
        )
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    topology = load_topology()
    layout_ms = _median_ms(lambda: layout_topology(topology), repeat)
    print(f"topology layout (once per report): {layout_ms:.1f} ms")
    print(
        f"{'entries':>8}{'journal KiB':>13}{'report KiB':>12}{'dump ms':>10}{'report ms':>11}"
        f"{'x dump':>8}"
    )
    for n in SIZES:
        entries = _journal(n)
        journal = b"".join(orjson.dumps(e) + b"\n" for e in entries)
        runs = [RunRecord("bench", "bench", entries)]
        html = report_html("bench", topology, runs).encode()
        dump_ms = _median_ms(lambda e=entries: [orjson.dumps(x) for x in e], repeat)
        build_ms = _median_ms(lambda r=runs: report_html("bench", topology, r), repeat)
        print(
            f"{n:>8}{len(journal) / 1024:>13.0f}{len(html) / 1024:>12.0f}{dump_ms:>10.1f}"
            f"{build_ms:>11.1f}{build_ms / dump_ms:>8.1f}"
        )


if __name__ == "__main__":
    main()
