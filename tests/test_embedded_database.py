"""The embedded database keeps the asyncio engine's guarantees without its machinery.

One synchronous connection per database (``EmbeddedDatabase``): a ``begin()`` or
``connect()`` block holds it for the whole block, so two tasks never share a
transaction; rows are read when the statement runs; a block that did not commit leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text

from ecom_harness.stubs import Backends, open_database
from ecom_harness.stubs.state import Database

METADATA = MetaData()
ITEMS = Table("items", METADATA, Column("id", Integer, primary_key=True), Column("name", String))


@pytest.fixture
async def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Database]:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    database = await open_database("order-svc", Backends())
    async with database.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield database
    await database.dispose()


async def names(db: Database) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.scalars(select(ITEMS.c.name).order_by(ITEMS.c.id))).all())


async def test_a_task_rolling_back_never_undoes_another_tasks_work(db: Database) -> None:
    """A holds its transaction across an await; B's transaction waits for A's block to
    end, so A's rollback takes only A's insert with it."""
    a_inserted, order = asyncio.Event(), []

    async def a() -> None:
        with pytest.raises(RuntimeError):
            async with db.begin() as conn:
                await conn.execute(ITEMS.insert(), {"name": "a"})
                a_inserted.set()
                await asyncio.sleep(0.05)  # B is waiting meanwhile
                order.append("a ends")
                raise RuntimeError("a fails")

    async def b() -> None:
        await a_inserted.wait()
        async with db.begin() as conn:
            order.append("b begins")
            await conn.execute(ITEMS.insert(), {"name": "b"})

    await asyncio.gather(a(), b())
    assert order == ["a ends", "b begins"]
    assert await names(db) == ["b"]


async def test_rows_are_read_when_the_statement_runs(db: Database) -> None:
    async with db.begin() as conn:
        await conn.execute(ITEMS.insert(), [{"name": "x"}, {"name": "y"}])
    async with db.connect() as conn:
        rows = await conn.execute(select(ITEMS.c.name).order_by(ITEMS.c.id))
    async with db.begin() as conn:  # written after the read, before the rows are used
        await conn.execute(ITEMS.insert(), {"name": "z"})
    assert [row.name for row in rows] == ["x", "y"]


async def test_what_a_read_block_wrote_without_committing_is_rolled_back(db: Database) -> None:
    async with db.connect() as conn:
        await conn.execute(ITEMS.insert(), {"name": "uncommitted"})
    async with db.connect() as conn:
        await conn.execute(ITEMS.insert(), {"name": "committed"})
        await conn.commit()
    assert await names(db) == ["committed"]


async def test_a_statement_that_fails_leaves_the_database_usable(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    async with db.begin() as conn:
        await conn.execute(ITEMS.insert(), {"id": 1, "name": "first"})
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(ITEMS.insert(), {"id": 2, "name": "second"})
            await conn.execute(ITEMS.insert(), {"id": 1, "name": "clash"})
    assert await names(db) == ["first"]  # the whole failed transaction is gone
    async with db.connect() as conn:
        assert await conn.scalar(text("PRAGMA locking_mode")) == "exclusive"


def test_ids_are_unique_and_a_forked_child_makes_its_own() -> None:
    """Ids come from a buffer of the OS's randomness: never the same bytes twice, and a
    forked child does not hand out the bytes its parent will."""
    import os

    from ecom_harness.stubs.state import new_id

    ids = {new_id("ord") for _ in range(5000)}  # more than one 4 KiB buffer
    assert len(ids) == 5000
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next ids, to the parent
        os.write(writer, " ".join(new_id("ord") for _ in range(20)).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    theirs = set(os.read(reader, 65536).decode().split())
    os.close(reader)
    mine = {new_id("ord") for _ in range(20)}
    assert len(theirs) == 20 and not theirs & mine
