"""Prepared statements (``stubs/state/_prepared.py``) answer as SQLAlchemy's own path
does, on the embedded database (sqlite3) and on PostgreSQL (asyncpg, ``_postgres.py``).

Every statement the simulators run while orders flow (placed, declined, read back, their
events and mails) is run both ways on the same connection: SQLAlchemy's path inside a
savepoint that is rolled back, then the prepared path. The rows (keys, values, types)
and the counts of changed rows must be the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, MetaData, String, Table, bindparam, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.stubs.state import Backends, _database, _postgres, open_database
from ecom_harness.stubs.state._database import Database, EmbeddedDatabase, insert_into
from ecom_harness.stubs.state._postgres import PostgresDatabase
from ecom_harness.stubs.state._prepared import PreparedResult
from mesh_flow import CREDENTIALS, place_order, signed_in

SEEN = MetaData()
seen = Table("seen", SEEN, Column("id", String(16), primary_key=True))
# two tables of five columns: writes together number their parameters past $9
noted, logged = (
    Table(
        name,
        SEEN,
        Column("id", String(16), primary_key=True),
        Column("note", JSON),
        *(Column(column, String(16)) for column in ("a", "b", "c")),
    )
    for name in ("noted", "logged")
)


@pytest.fixture
async def database(backends: Backends, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database with the table ``seen``: a SQLite file, or a database of its
    own on the PostgreSQL server (``backends``: both, one after the other)."""
    if backends.database_url is None:
        opened: Database = EmbeddedDatabase(str(tmp_path / "prepared.sqlite"))
    else:
        opened = await open_database("prepared", backends)
    async with opened.begin() as conn:
        await conn.run_sync(SEEN.create_all)
    yield opened
    await opened.dispose()


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


async def _order_flow(backends: Backends) -> None:
    """Orders placed, declined and read back through a mesh on ``backends``, until every
    event has been handled (mails included)."""
    settings = {"api-gateway": {"rate_limit": "100000/minute", "ip_rate_limit": "100000/minute"}}
    options = MeshOptions(
        settings=settings,
        postgres_url=backends.database_url,
        redis_url=backends.redis_url,
        database_prefix=backends.database_prefix,
    )
    async with Mesh(options) as mesh:
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


async def test_every_prepared_statement_answers_as_sqlalchemy_does(
    monkeypatch: pytest.MonkeyPatch, backends: Backends
) -> None:
    compared: Counter[str] = Counter()
    differences: list[str] = []
    embedded = backends.database_url is None
    connection_class: Any = _database._InlineConnection if embedded else _postgres._HeldConnection
    original = connection_class.execute

    async def sqlalchemy_answer(self: Any, statement: Any, parameters: Any) -> tuple[Any, ...]:
        """SQLAlchemy's own answer, in a savepoint that is rolled back."""
        if embedded:
            connection = self.sync_connection
            savepoint = connection.begin_nested()
            expected = connection.execute(statement, parameters)
            rows = expected.freeze()() if expected.returns_rows else None
            savepoint.rollback()
            return _answer(rows, expected.rowcount)
        savepoint = await self.sa.begin_nested()
        expected = await self.sa.execute(statement, parameters)
        rows = expected.freeze()() if expected.returns_rows else None
        await savepoint.rollback()
        return _answer(rows, expected.rowcount)

    async def both_ways(self: Any, statement: Any, parameters: Any = None) -> Any:
        many = parameters is not None and type(parameters) is not dict
        prepared = None if many else self.database.statements.get(statement, parameters or {})
        if prepared is None:
            return await original(self, statement, parameters)
        want = await sqlalchemy_answer(self, statement, parameters)
        result = await original(self, statement, parameters)
        assert isinstance(result, PreparedResult), "the prepared path was not taken"
        returns_rows, count, frozen = bool(result.keys()), result.rowcount, result.freeze()
        sql = str(statement.compile(dialect=self.database.sync_engine.dialect)).split("\n")[0]
        got = _answer(frozen() if returns_rows else None, count)
        if want != got and not embedded and prepared.reads_only:
            # PostgreSQL: another connection of the service may have committed between
            # the two reads; SQLAlchemy's answer now must be the prepared one
            want = await sqlalchemy_answer(self, statement, parameters)
        if want != got:
            differences.append(f"{sql}\n  SQLAlchemy: {want}\n  prepared:   {got}")
        compared[sql.split(" ")[0]] += 1
        return frozen() if returns_rows else result

    monkeypatch.setattr(connection_class, "execute", both_ways)
    await _order_flow(backends)
    assert not differences, "\n".join(differences)
    assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= set(compared), compared


async def test_a_prepared_statement_fails_as_sqlalchemy_does(database: Any) -> None:
    """A broken constraint raises SQLAlchemy's IntegrityError on both paths: the
    simulators tell "already there" from other failures by it (the inbox, the contacts,
    the idempotency keys), and a driver's own error would stop them short."""
    async with database.begin() as conn:  # first sight: SQLAlchemy's path
        await conn.execute(insert_into(seen), {"id": "a"})
    for _ in range(2):  # then the prepared one
        with pytest.raises(IntegrityError):
            async with database.begin() as conn:
                await conn.execute(insert_into(seen), {"id": "a"})
    assert database.statements.get(insert_into(seen), {"id": "a"}) is not None
    async with database.connect() as conn:
        assert (await conn.execute(select(seen.c.id))).all() == [("a",)]


async def test_prepared_writes_keep_the_blocks_transactions(database: Any) -> None:
    """Prepared writes (no SQLAlchemy transaction begun) end as the block says: kept at
    the end of ``begin()``, undone when it raises, undone at the end of ``connect()``
    unless the caller committed."""
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


async def test_an_in_list_runs_prepared_at_each_length(database: Any) -> None:
    """A list an ``IN`` expands is written out per length, as SQLAlchemy writes it: each
    length answers with its own rows, an empty list with none."""
    async with database.begin() as conn:
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


async def test_a_statement_alone_is_a_transaction_of_its_own(database: Any) -> None:
    """``db.execute``: the statement is kept when it returns (another connection sees
    it), on SQLAlchemy's path (first sight) and prepared; a broken constraint raises
    SQLAlchemy's IntegrityError, keeps nothing and leaves the connection usable; the
    count of changed rows is the statement's."""
    for key in ("first", "second", "third"):
        await database.execute(insert_into(seen), {"id": key})
        async with database.connect() as conn:
            assert key in set((await conn.scalars(select(seen.c.id))).all())
    assert database.statements.get(insert_into(seen), {"id": "x"}) is not None
    for _ in range(2):
        with pytest.raises(IntegrityError):
            await database.execute(insert_into(seen), {"id": "first"})
    renamed = seen.update().where(seen.c.id == bindparam("w_id")).values(id=bindparam("id"))
    for old, new in (("second", "2nd"), ("third", "3rd"), ("absent", "none")):
        changed = await database.execute(renamed, {"w_id": old, "id": new})
        assert changed.rowcount == (0 if old == "absent" else 1)
    async with database.connect() as conn:
        assert set((await conn.scalars(select(seen.c.id))).all()) == {"first", "2nd", "3rd"}


def _writes(key: str) -> list[Any]:
    """A row for ``seen``, ``noted`` and ``logged``, keyed ``key``."""
    row = {"id": key, "note": {"key": key, "n": [1, 2]}, "a": "a" + key, "b": "b", "c": "c"}
    return [(insert_into(seen), {"id": key}), (insert_into(noted), row), (insert_into(logged), row)]


async def _rows(database: Any) -> dict[str, set[tuple[Any, ...]]]:
    async with database.connect() as conn:
        return {
            table.name: {
                tuple(str(value) for value in row) for row in await conn.execute(select(table))
            }
            for table in (seen, noted, logged)
        }


async def test_writes_together_are_one_transaction(database: Any) -> None:
    """``db.execute_all``: every write kept, on first sight (SQLAlchemy's path, a block)
    and prepared (on PostgreSQL, one statement); the same rows either way; a broken
    constraint in any of them raises SQLAlchemy's IntegrityError and keeps none; two
    writes to one table see each other (run as a block)."""
    for key in ("k1", "k2", "k3"):  # seen twice: prepared from the third
        await database.execute_all(_writes(key))
    assert database.statements.get(insert_into(logged), _writes("x")[2][1]) is not None
    rows = await _rows(database)
    assert rows["seen"] == {("k1",), ("k2",), ("k3",)}
    assert rows["noted"] == rows["logged"]
    assert ("k3", str({"key": "k3", "n": [1, 2]}), "ak3", "b", "c") in rows["noted"]
    for broken in ([*_writes("k4")[1:], _writes("k1")[0]], _writes("k1")):
        with pytest.raises(IntegrityError):
            await database.execute_all(broken)
        assert await _rows(database) == rows  # nothing of k4 either
    renamed = seen.update().where(seen.c.id == bindparam("w_id")).values(id=bindparam("id"))
    await database.execute_all([(renamed, {"w_id": "k1", "id": "k1b"}), *_writes("k5")[1:]])
    await database.execute_all(
        [(insert_into(seen), {"id": "t1"}), (renamed, {"w_id": "t1", "id": "t2"})]
    )
    after = await _rows(database)
    assert after["seen"] == {("k1b",), ("k2",), ("k3",), ("t2",)}
    assert len(after["noted"]) == len(after["logged"]) == 4


@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_postgres_runs_writes_together_in_one_round_trip(
    database: PostgresDatabase,
) -> None:
    """Prepared writes to different tables go as one statement, without ``BEGIN`` (see
    the test above for what is logged); two writes to one table, in a block; a write
    alone, as a statement alone."""
    for key in ("warm-1", "warm-2"):
        await database.execute_all(_writes(key))
    async with database.connect() as conn:
        raw = conn.raw
    sent: list[str] = []
    raw.add_query_logger(lambda record: sent.append(record.query.rstrip(";").upper()))
    await database.execute_all(_writes("together"))
    together, sent[:] = list(sent), []
    await database.execute_all([(insert_into(seen), {"id": "alone"})])
    alone, sent[:] = list(sent), []
    await database.execute_all(
        [(insert_into(seen), {"id": "s1"}), (insert_into(seen), {"id": "s2"})]
    )
    assert together == [] and alone == []
    assert sent == ["BEGIN"]
    assert {("together",), ("s1",), ("s2",), ("alone",)} <= (await _rows(database))["seen"]


@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_postgres_runs_a_statement_alone_in_one_round_trip(
    database: PostgresDatabase,
) -> None:
    """What PostgreSQL is sent before the statement, read by asyncpg's query logger
    (it logs the simple query that begins a transaction, not prepared statements nor
    the commit): a statement alone is sent with no ``BEGIN`` -- the server commits it
    by itself -- where the same statement in a ``begin()`` block comes after one."""
    for key in ("warm-1", "warm-2"):  # seen twice: prepared from now on
        await database.execute(insert_into(seen), {"id": key})
    async with database.connect() as conn:
        raw = conn.raw
    sent: list[str] = []
    raw.add_query_logger(lambda record: sent.append(record.query.rstrip(";").upper()))
    await database.execute(insert_into(seen), {"id": "alone"})
    alone, sent[:] = list(sent), []
    async with database.begin() as conn:
        assert conn.raw is raw  # the free list hands out the last connection returned
        await conn.execute(insert_into(seen), {"id": "in-a-block"})
    assert alone == []
    assert sent == ["BEGIN"]
    async with database.connect() as conn:
        assert {"alone", "in-a-block"} <= set((await conn.scalars(select(seen.c.id))).all())


@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_postgres_reads_before_the_first_write_begin_no_transaction(
    database: PostgresDatabase,
) -> None:
    """On PostgreSQL a plain read before a block's first write runs without ``BEGIN``
    (under READ COMMITTED each statement reads its own snapshot either way); a write, and
    a locking read, begin the block's transaction first, and what they did is undone
    with it."""
    among = select(seen.c.id)
    locking = select(seen.c.id).with_for_update()
    for _ in range(2):  # seen twice: prepared from now on
        async with database.connect() as conn:
            await conn.execute(among)
            await conn.execute(locking)
    async with database.connect() as conn:
        await conn.execute(among)
        assert not conn.raw.is_in_transaction()
        await conn.execute(locking)
        assert conn.raw.is_in_transaction()
    with pytest.raises(RuntimeError):
        async with database.begin() as conn:
            assert (await conn.execute(among)).all() == []
            assert not conn.raw.is_in_transaction()
            await conn.execute(insert_into(seen), {"id": "undone"})
            assert conn.raw.is_in_transaction()
            assert (await conn.execute(among)).all() == [("undone",)]
            raise RuntimeError("undo it")
    async with database.connect() as conn:
        assert (await conn.execute(among)).all() == []


@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_postgres_replaces_a_connection_the_server_closed(
    database: PostgresDatabase,
) -> None:
    """A kept connection the server ends (restarted, or an administrator's
    ``pg_terminate_backend``) is replaced: when asyncpg has not yet seen the socket
    close, the one block that holds it fails with SQLAlchemy's error, marked as a lost
    connection; the next blocks work, on a new server process."""
    among = select(seen.c.id)
    async with database.begin() as conn:
        await conn.execute(insert_into(seen), {"id": "kept"})
    async with database.connect() as conn:
        victim = conn.raw.get_server_pid()
    admin = await open_database(
        "prepared_admin",
        Backends(
            database_url=database.url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
        ),
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
    finally:
        await admin.dispose()
    failures = 0
    for _ in range(3):  # the free list hands out the last connection returned first
        try:
            async with database.connect() as conn:
                assert (await conn.execute(among)).all() == [("kept",)]
                assert conn.raw.get_server_pid() != victim
        except DBAPIError as error:
            assert error.connection_invalidated, error
            failures += 1
    assert failures <= 1
