"""The work per order does not grow with the rows a long run leaves behind.

Every statement the simulators run while orders flow (placed, declined, their events
and mails) is asked for SQLite's query plan, with the parameters it ran with. Each table
it reads must be reached by an equality on an index (or its rowid): a plan that scans a
table, or reads a range of an index with no equality before it, reads more rows the
longer the run. That is how an hour-long load run fell from 31 to 17 orders/s: the
reservations' sweep read every reservation past its hold, committed ones included
(issue 15). Tables that do not grow with the orders are exempt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event

from ecom_harness.harness.mesh import Mesh, MeshOptions
from mesh_flow import place_order, signed_in

# Their rows do not grow with the orders: seeded once (stock, products, users) or kept
# bounded (the outbox, the inbox and the undo queue empty as they are worked through).
BOUNDED = {"stock", "products", "users", "outbox", "inbox", "undo_steps"}
# Reads whose rows are the ones they delete: a range that stays as small as what expired.
RANGE_READS_THAT_DELETE = re.compile(r"^DELETE FROM (idempotency_keys|sent_messages)\b")


def growing_reads(plan: Sequence[Any]) -> list[str]:
    """The plan lines that read a growing table without an equality on an index."""
    found = []
    for row in plan:
        detail = str(row[-1])
        table = re.search(r"(?:SCAN|SEARCH) (\w+)", detail)
        if table is None or table.group(1) in BOUNDED:
            continue
        if detail.startswith("SCAN") or not re.search(r"\(\w+=\?|rowid=\?", detail):
            found.append(detail)
    return found


async def test_every_statement_of_an_order_reads_its_rows_by_an_index() -> None:
    settings = {"api-gateway": {"rate_limit": "100000/minute", "ip_rate_limit": "100000/minute"}}
    async with Mesh(MeshOptions(settings=settings)) as mesh:
        assert mesh.host is not None and mesh.bus is not None
        ran: dict[tuple[str, str], Any] = {}
        for name, stub in mesh.host.stubs.items():

            def seen(*args: Any, component: str = name) -> None:
                statement, parameters, many = args[2], args[3], args[5]
                if not many and not statement.lstrip().upper().startswith("INSERT"):
                    ran.setdefault((component, statement), parameters)

            event.listen(stub.db.sync_engine, "before_cursor_execute", seen)
        async with signed_in(mesh) as client:
            for n, card in enumerate(["pm_card_visa", "pm_card_chargeDeclined"] * 2):
                placed = await place_order(client, f"plan-{n}", card)
                assert placed.status_code in (201, 402), placed.text
        for stub in mesh.host.stubs.values():
            if hasattr(stub.simulator, "flush_outbox"):
                await stub.simulator.flush_outbox()
        await mesh.bus.drain(10)

        components = {component for component, _ in ran}
        assert {"order-svc", "inventory-svc", "payment-svc", "notify-svc"} <= components
        growing = []
        for (component, statement), parameters in sorted(ran.items()):
            if RANGE_READS_THAT_DELETE.match(statement):
                continue
            async with mesh.host.stubs[component].db.connect() as conn:
                plan = await conn.run_sync(
                    lambda sync, s=statement, p=parameters: sync.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {s}", p
                    ).all()
                )
            growing += [f"{component}: {line}\n    {statement}" for line in growing_reads(plan)]
        assert not growing, "\n".join(growing)
