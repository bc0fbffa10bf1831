"""The embedded database's prepared statements (``stubs/state/_prepared.py``) answer as
SQLAlchemy's own path does.

Every statement the simulators run while orders flow (placed, declined, read back, their
events and mails) is run both ways on the same connection: SQLAlchemy's path inside a
savepoint that is rolled back, then the prepared path. The rows (keys, values, types)
and the counts of changed rows must be the same.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, bindparam, select
from sqlalchemy.exc import IntegrityError

from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.stubs.state import _database
from ecom_harness.stubs.state._database import EmbeddedDatabase, insert_into
from ecom_harness.stubs.state._prepared import PreparedResult
from mesh_flow import CREDENTIALS, place_order, signed_in


def _answer(rows: Any, rowcount: int) -> tuple[Any, ...]:
    """What a simulator can see of a result: its keys and typed rows (``rows``, a
    result that returns rows), or else the count of rows it changed."""
    if rows is None:
        return ("rowcount", rowcount)
    read = rows.all()
    return (
        list(rows.keys()),
        [tuple(row) for row in read],
        [tuple(type(value) for value in row) for row in read],
    )


async def test_every_prepared_statement_answers_as_sqlalchemy_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: Counter[str] = Counter()
    differences: list[str] = []
    original = _database._InlineConnection.execute

    async def both_ways(self: Any, statement: Any, parameters: Any = None) -> Any:
        many = parameters is not None and type(parameters) is not dict
        if many or self.database.statements.get(statement, parameters or {}) is None:
            return await original(self, statement, parameters)
        connection = self.sync_connection
        savepoint = connection.begin_nested()
        expected = connection.execute(statement, parameters)
        want = _answer(expected.freeze()() if expected.returns_rows else None, expected.rowcount)
        savepoint.rollback()
        result = await original(self, statement, parameters)
        assert isinstance(result, PreparedResult), "the prepared path was not taken"
        returns_rows, count, frozen = bool(result.keys()), result.rowcount, result.freeze()
        sql = str(statement.compile(dialect=connection.dialect)).split("\n")[0]
        got = _answer(frozen() if returns_rows else None, count)
        if want != got:
            differences.append(f"{sql}\n  SQLAlchemy: {want}\n  prepared:   {got}")
        compared[sql.split(" ")[0]] += 1
        return frozen() if returns_rows else result

    monkeypatch.setattr(_database._InlineConnection, "execute", both_ways)
    settings = {"api-gateway": {"rate_limit": "100000/minute", "ip_rate_limit": "100000/minute"}}
    async with Mesh(MeshOptions(settings=settings)) as mesh:
        assert mesh.host is not None and mesh.bus is not None
        async with signed_in(mesh) as client:
            # statements are prepared the second time they are seen: a second login
            assert (await client.post("/v1/auth/login", json=CREDENTIALS)).status_code == 200
            for n, card in enumerate(["pm_card_visa", "pm_card_chargeDeclined"] * 3):
                placed = await place_order(client, f"prep-{n}", card)
                assert placed.status_code in (201, 402), placed.text
                if placed.status_code == 201:
                    order = placed.json()["order_id"]
                    assert (await client.get(f"/v1/orders/{order}")).status_code == 200
                    assert (await client.get("/v1/orders")).status_code == 200
                assert (await client.get("/v1/products/SKU-1001")).status_code == 200
        for stub in mesh.host.stubs.values():
            if hasattr(stub.simulator, "flush_outbox"):
                await stub.simulator.flush_outbox()
        await mesh.bus.drain(10)

    assert not differences, "\n".join(differences)
    assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= set(compared), compared


async def test_a_prepared_statement_fails_as_sqlalchemy_does(tmp_path: Path) -> None:
    """A broken constraint raises SQLAlchemy's IntegrityError on both paths: the
    simulators tell "already there" from other failures by it (the inbox, the contacts,
    the idempotency keys), and a driver's own error would stop them short."""
    metadata = MetaData()
    seen = Table("seen", metadata, Column("id", String(8), primary_key=True))
    database = EmbeddedDatabase(str(tmp_path / "prepared.sqlite"))
    async with database.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with database.begin() as conn:  # first sight: SQLAlchemy's path
        await conn.execute(insert_into(seen), {"id": "a"})
    for _ in range(2):  # then the prepared one
        with pytest.raises(IntegrityError):
            async with database.begin() as conn:
                await conn.execute(insert_into(seen), {"id": "a"})
    assert database.statements.get(insert_into(seen), {"id": "a"}) is not None
    async with database.connect() as conn:
        assert (await conn.execute(select(seen.c.id))).all() == [("a",)]
    await database.dispose()


async def test_prepared_writes_keep_the_blocks_transactions(tmp_path: Path) -> None:
    """Prepared writes (no SQLAlchemy transaction begun) end as the block says: kept at
    the end of ``begin()``, undone when it raises, undone at the end of ``connect()``
    unless the caller committed."""
    metadata = MetaData()
    seen = Table("seen", metadata, Column("id", String(8), primary_key=True))
    database = EmbeddedDatabase(str(tmp_path / "prepared.sqlite"))
    async with database.begin() as conn:
        await conn.run_sync(metadata.create_all)
    for key in ("warm-1", "warm-2"):  # seen twice: prepared from now on
        async with database.begin() as conn:
            await conn.execute(insert_into(seen), {"id": key})
    assert database.statements.get(insert_into(seen), {"id": "x"}) is not None

    with pytest.raises(RuntimeError):
        async with database.begin() as conn:
            await conn.execute(insert_into(seen), {"id": "raised"})
            raise RuntimeError("undo it")
    async with database.connect() as conn:
        await conn.execute(insert_into(seen), {"id": "dropped"})
    async with database.connect() as conn:
        await conn.execute(insert_into(seen), {"id": "committed"})
        await conn.commit()
    async with database.begin() as conn:
        await conn.execute(insert_into(seen), {"id": "kept"})

    async with database.connect() as conn:
        ids = set((await conn.scalars(select(seen.c.id))).all())
    assert ids == {"warm-1", "warm-2", "committed", "kept"}
    await database.dispose()


async def test_an_in_list_runs_prepared_at_each_length(tmp_path: Path) -> None:
    """A list an ``IN`` expands is written out per length, as SQLAlchemy writes it: each
    length answers with its own rows, an empty list with none."""
    metadata = MetaData()
    seen = Table("seen", metadata, Column("id", String(8), primary_key=True))
    database = EmbeddedDatabase(str(tmp_path / "prepared.sqlite"))
    async with database.begin() as conn:
        await conn.run_sync(metadata.create_all)
        for key in "abc":
            await conn.execute(insert_into(seen), {"id": key})
    among = select(seen.c.id).where(seen.c.id.in_(bindparam("w_ids", expanding=True)))
    wanted = {("a",): {"a"}, ("a", "c"): {"a", "c"}, (): set(), ("b", "c", "x"): {"b", "c"}}
    for _ in range(3):  # SQLAlchemy's path first, then prepared
        for ids, found in wanted.items():
            async with database.connect() as conn:
                assert set((await conn.scalars(among, {"w_ids": list(ids)})).all()) == found
    for ids in wanted:
        assert database.statements.get(among, {"w_ids": list(ids)}) is not None, ids
    await database.dispose()
