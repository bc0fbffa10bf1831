"""The embedded databases live on temporary files, not in the process's memory.

In memory (``:memory:``) every row a long run wrote stayed in the mesh's RSS, about
20 KB per order (issue 15, flat memory). Each service's SQLite database is now a file
of its own in the process's scratch folder under the temporary directory, opened for
speed (journal in memory, no fsync), and removed when disposed: when the mesh stops.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, inspect, text

from ecom_harness.harness.mesh import Mesh
from ecom_harness.stubs import Backends, StubHost, open_database


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temporary directory the databases go to, for this test alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path


def databases(folder: Path) -> list[Path]:
    """The database files, and their companions, made under ``folder`` (in the
    process's scratch folder; a file appears at the first connection)."""
    return sorted(folder.glob("ecom-harness-state-*/*.sqlite*"))


async def test_a_database_is_a_file_of_its_own_removed_when_disposed(scratch: Path) -> None:
    orders = await open_database("order-svc", Backends())
    stock = await open_database("inventory-svc", Backends())
    try:
        async with orders.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            await conn.execute(
                text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 1000} for _ in range(500)]
            )
            assert await conn.scalar(text("PRAGMA journal_mode")) == "memory"
            assert await conn.scalar(text("PRAGMA synchronous")) == 0  # OFF: scratch data
        async with orders.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM t")) == 500
        mine = Path(str(orders.url.database))
        assert mine.name.startswith("db_order_svc-") and mine.suffix == ".sqlite"
        assert mine in databases(scratch)
        assert Path(str(stock.url.database)).parent == mine.parent  # the process's folder
        assert mine.stat().st_size > 500_000  # the rows are in the file, not in memory
    finally:
        await orders.dispose()
    # order-svc's file is gone (and any companion file with it); inventory-svc's stays
    assert all(f.name.startswith("db_inventory_svc-") for f in databases(scratch))
    await stock.dispose()
    assert databases(scratch) == []


async def test_the_mesh_makes_one_file_per_service_database_and_removes_them(
    scratch: Path,
) -> None:
    async with Mesh() as mesh:
        assert mesh.host is not None
        files = [f for f in databases(scratch) if f.suffix == ".sqlite"]
        assert len(files) == len(mesh.host.stubs)
        for stub in mesh.host.stubs.values():
            assert Path(str(stub.db.url.database)) in files
    assert databases(scratch) == []


async def test_a_stub_host_removes_its_files_when_it_stops(scratch: Path) -> None:
    host = StubHost.shipped(["order-svc", "payment-svc"], backends=Backends())
    await host.start()
    try:
        assert len([f for f in databases(scratch) if f.suffix == ".sqlite"]) == 2
    finally:
        await host.stop()
    assert databases(scratch) == []


@asynccontextmanager
async def upgraded(component: str, metadata: MetaData, *older: str) -> AsyncIterator[Any]:
    """The component's embedded database as an older version left it (the ``older``
    statements), then upgraded as a start of this version does it (``create_all`` and
    ``upgrade_schema``, as ``Simulator.start``): its connection, in that transaction."""
    from ecom_harness.stubs.behaviours._simulator import upgrade_schema

    engine = await open_database(component, Backends())
    try:
        async with engine.begin() as conn:
            for statement in older:
                await conn.execute(text(statement))
            await conn.run_sync(metadata.create_all)
            await conn.run_sync(upgrade_schema, metadata)
            yield conn
    finally:
        await engine.dispose()


async def test_a_column_added_since_is_added_to_a_table_an_older_version_made(
    scratch: Path,
) -> None:
    """A PostgreSQL database outlives the process: order-svc's idempotency_keys made
    before keys expired has no created_at, and starting the simulator adds it."""
    from ecom_harness.stubs.behaviours.order_svc import OrderSimulator

    older = (
        "CREATE TABLE idempotency_keys (user_id VARCHAR(40), key VARCHAR(255),"
        " fingerprint VARCHAR(64) NOT NULL, order_id VARCHAR(40),"
        " status INTEGER NOT NULL, media_type VARCHAR(64), body JSON,"
        " headers JSON NOT NULL, PRIMARY KEY (user_id, key))",
        "INSERT INTO idempotency_keys VALUES ('usr_1', 'k', 'f', 'ord_1', 201, NULL, NULL, '{}')",
    )
    async with upgraded("order-svc", OrderSimulator.metadata, *older) as conn:
        columns = await conn.run_sync(lambda sync: inspect(sync).get_columns("idempotency_keys"))
        assert "created_at" in [column["name"] for column in columns]
        old = await conn.scalar(text("SELECT created_at FROM idempotency_keys"))
        assert old is None  # a row made before: expired (KeyRetention)


async def test_an_index_added_since_is_made_on_a_table_an_older_version_made(
    scratch: Path,
) -> None:
    """inventory-svc's reservations made before the sweep's index (status, expires_at)
    get it when the simulator starts, so the sweep reads only HELD reservations."""
    from ecom_harness.stubs.behaviours.inventory_svc import InventorySimulator

    older = (
        "CREATE TABLE reservations (reservation_id VARCHAR(40) PRIMARY KEY,"
        " order_id VARCHAR(40) NOT NULL UNIQUE, status VARCHAR(16) NOT NULL,"
        " items JSON NOT NULL, expires_at VARCHAR(40) NOT NULL,"
        " created_at VARCHAR(40) NOT NULL)",
    )
    async with upgraded("inventory-svc", InventorySimulator.metadata, *older) as conn:
        indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("reservations"))
        made = {index["name"] for index in indexes}
        assert "ix_reservations_status_expires_at" in made
        assert "ix_reservations_expires_at" in made
        plan = await conn.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT * FROM reservations"
                " WHERE status = 'HELD' AND expires_at <= '2026-01-01T00:00:00Z'"
            )
        )
        assert "ix_reservations_status_expires_at" in " ".join(str(r) for r in plan)


async def test_on_postgresql_a_second_start_keeps_the_first_runs_state() -> None:
    """README: with ``--postgres`` the state persists across restarts. The seed data's
    history (its orders, payments, reservations, shipments, mails) is written at every
    start only where missing, so the second start neither fails on the unique keys nor
    duplicates it, and what the first run wrote is still there."""
    import os
    import uuid

    import httpx

    from conftest import POSTGRES_URL, drop_databases
    from ecom_harness.harness.mesh import MeshOptions
    from ecom_harness.specs import load_seed

    prefix = f"ecomtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    options = MeshOptions(postgres_url=POSTGRES_URL, database_prefix=prefix)
    seeded = load_seed().orders[0]
    token = {"X-Service-Token": "restart-test"}
    try:
        auth = {"Authorization": "Bearer sk_test_restart"}
        async with Mesh(options) as mesh, httpx.AsyncClient(base_url=mesh.url("stripe")) as stripe:
            made = await stripe.post(
                "/v1/payment_intents", data={"amount": 1999, "currency": "eur"}, headers=auth
            )
            assert made.status_code == 200, made.text
        async with Mesh(options) as mesh:
            async with httpx.AsyncClient(base_url=mesh.url("stripe")) as stripe:
                kept = await stripe.get(f"/v1/payment_intents/{made.json()['id']}", headers=auth)
                assert kept.status_code == 200, kept.text
            async with httpx.AsyncClient(base_url=mesh.url("order-svc"), headers=token) as orders:
                listed = await orders.get("/orders", params={"user_id": seeded["user_id"]})
                ids = [order["order_id"] for order in listed.json()["items"]]
                assert ids.count(seeded["order_id"]) == 1
    finally:
        await drop_databases(POSTGRES_URL, prefix)
