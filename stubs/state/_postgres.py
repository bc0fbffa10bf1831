"""PostgreSQL for the simulators: SQLAlchemy's asyncio engine on asyncpg, with each
statement seen before run prepared on the asyncpg connection under it.

Why: through the asyncio engine, every statement switched greenlets, built an execution
context and a cursor result, and every block checked a connection out of the pool and
back in. A transaction of two statements cost the mesh 620 us of CPU that way against
270 us on asyncpg itself (this machine, issue 15), and on PostgreSQL the statements
were most of what an order cost the mesh.

What stays SQLAlchemy's, so a simulator cannot tell the two paths apart (a test runs
every statement of an order both ways and compares):

* the SQL, compiled once per statement and parameter keys for the asyncpg dialect, with
  its bind and result processors, and the rows (``Row`` objects) -- :mod:`._prepared`;
* the server-side prepared statements: the asyncpg adapter's own cache of them;
* the transaction: the adapter's, so a statement that goes through SQLAlchemy (one the
  prepared path does not cover, ``run_sync``) joins it, and ends it;
* the errors: asyncpg's translated as SQLAlchemy does (``IntegrityError``...).

Connections are checked out of SQLAlchemy's pool once and kept (``size`` of them), so a
block only takes one from a free list. A plain ``SELECT`` that comes before a block's
first write runs without ``BEGIN``: under READ COMMITTED (checked on each connection)
every statement reads its own snapshot inside a transaction too, so this changes
nothing but the two round trips a read-only block spent on ``BEGIN`` and ``ROLLBACK``.
For the same reason :meth:`PostgresDatabase.execute` runs its one statement without
``BEGIN`` and ``COMMIT``: PostgreSQL makes a statement outside a transaction block a
transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Concatenate, NoReturn, ParamSpec, TypeVar, cast

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ._database import ScalarShortcuts, Write, execute_in_block
from ._prepared import NO_ROWS, Prepared, PreparedResult, StatementCache

if TYPE_CHECKING:
    from sqlalchemy import URL, CursorResult, Engine, Executable, Table
    from sqlalchemy import Connection as SyncConnection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["PostgresDatabase"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

# the count of rows a statement touched, from its command tag (as SQLAlchemy reads it)
_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")
_ISOLATION = text("SHOW transaction_isolation")
_PLACEHOLDER = re.compile(r"\$(\d+)")  # asyncpg's numbered parameters


class _HeldConnection(ScalarShortcuts):
    """A connection kept out of SQLAlchemy's pool, with the asyncpg adapter under it."""

    __slots__ = ("adapter", "alone", "database", "prepare", "raw", "read_committed", "sa")

    def __init__(self, database: PostgresDatabase, sa: AsyncConnection, read_committed: bool):
        self.database = database
        self.sa = sa
        fairy: Any = sa.sync_connection.connection  # type: ignore[union-attr]
        self.adapter: Any = fairy.dbapi_connection  # SQLAlchemy's AsyncAdapt_asyncpg_connection
        self.raw: Any = self.adapter._connection  # asyncpg's Connection
        self.read_committed = read_committed
        self.prepare = True  # set per block (PostgresDatabase._take)
        self.alone = False  # this block is one statement: no BEGIN (PostgresDatabase.execute)

    @property
    def usable(self) -> bool:
        return not self.sa.closed and not self.raw.is_closed()

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        if type(parameters) is list and len(parameters) == 1:
            parameters = parameters[0]  # one row: SQLAlchemy runs it as one execution too
        if parameters is None or type(parameters) is dict:
            given = parameters or {}
            prepared = self.database.statements.get(statement, given) if self.prepare else None
            values = prepared.values(given) if prepared is not None else None
            if prepared is not None and values is not None:
                return cast("CursorResult[Any]", await self._run(prepared, values))
        return await self.sa.execute(statement, parameters)

    async def _run(self, prepared: Prepared, values: list[Any]) -> PreparedResult:
        """Run on the asyncpg connection, in the adapter's transaction (begun first
        unless this is a read before any write or the block's only statement: see the
        module's doc)."""
        adapter = self.adapter
        try:
            if adapter._transaction is None and not (
                self.alone or (self.read_committed and prepared.reads_only)
            ):
                await adapter._start_transaction()
            statement, _ = await adapter._prepare(
                prepared.sql, self.database.dialect._invalidate_schema_cache_asof
            )
            rows = await statement.fetch(*values)
        except Exception as error:  # noqa: BLE001 - raised again as SQLAlchemy raises it
            self._raise(error, prepared.sql, values)
        shown = rows if prepared.rows_shown else ()
        result = PreparedResult(prepared.metadata or NO_ROWS, iter(shown))
        counted = _ROWCOUNT.match(statement.get_statusmsg() or "")
        result.rowcount = int(counted.group(1)) if counted else -1
        return result

    def _raise(self, error: Exception, sql: str, values: list[Any]) -> NoReturn:
        """Raise ``error`` as SQLAlchemy would: translated by the adapter into its DB-API
        error, wrapped in SQLAlchemy's (``IntegrityError``...)."""
        dialect = self.database.dialect
        try:
            self.adapter._handle_exception(error)
        except Exception as translated:
            dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
            if not isinstance(translated, dbapi_error):
                raise
            gone = dialect.is_disconnect(translated, None, None) or self.raw.is_closed()
            raise DBAPIError.instance(
                sql, values, translated, dbapi_error, connection_invalidated=gone
            ) from error
        raise error  # the adapter always raises; this line is for the type checker

    async def run_sync(
        self,
        fn: Callable[Concatenate[SyncConnection, _P], _T],
        *arg: _P.args,
        **kw: _P.kwargs,
    ) -> _T:
        return await self.sa.run_sync(fn, *arg, **kw)

    async def commit(self) -> None:
        await self.finish(commit=True)

    async def rollback(self) -> None:
        await self.finish(commit=False)

    async def finish(self, *, commit: bool) -> None:
        """End the open transaction, if any: SQLAlchemy's, when its path ran a statement
        (it ends the adapter's with it), else the adapter's, begun by the prepared path."""
        if self.sa.in_transaction():
            await (self.sa.commit() if commit else self.sa.rollback())
        adapter = self.adapter
        if adapter._transaction is not None:
            end = adapter._transaction.commit if commit else adapter._transaction.rollback
            try:
                await adapter._call_and_discard(end)
            except Exception as error:  # noqa: BLE001 - raised again as SQLAlchemy raises it
                self._raise(error, "COMMIT" if commit else "ROLLBACK", [])


class PostgresDatabase:
    """A :class:`~._database.Database` on a PostgreSQL database (see the module's doc).

    ``engine`` is SQLAlchemy's asyncio engine on asyncpg; its pool must allow ``size``
    connections more than anything else takes from it."""

    def __init__(self, engine: AsyncEngine, size: int):
        self.engine = engine
        self.dialect: Any = engine.dialect  # asyncpg's, whose schema-cache stamp _run passes on
        self.statements = StatementCache(engine.sync_engine)
        # free connections, last returned first (the warmest); None: one not opened yet
        self._free: asyncio.LifoQueue[_HeldConnection | None] = asyncio.LifoQueue()
        for _ in range(size):
            self._free.put_nowait(None)
        self._held: set[_HeldConnection] = set()
        # writes run as one statement (execute_all): per list of their prepared statements
        self._together: dict[tuple[Prepared, ...], Prepared] = {}
        # holds the database for this process while open (see _backends.open_database)
        self.owner: AsyncConnection | None = None

    @property
    def sync_engine(self) -> Engine:
        return self.engine.sync_engine

    @property
    def url(self) -> URL:
        return self.engine.url

    async def _take(self) -> _HeldConnection:
        """A free connection (opened if need be), asked once whether statements are
        watched: they then all go through SQLAlchemy (``StatementCache.watched``)."""
        held = await self._free.get()
        try:
            if held is None or not held.usable:
                if held is not None:
                    await self._drop(held)
                held = await self._open()
        except BaseException:
            self._free.put_nowait(None)  # the slot stays, to be opened next time
            raise
        held.prepare = not self.statements.watched
        held.alone = False
        return held

    async def _open(self) -> _HeldConnection:
        sa = await self.engine.connect()
        try:
            isolation = await sa.scalar(_ISOLATION)
            await sa.rollback()
        except BaseException:
            await sa.close()
            raise
        held = _HeldConnection(self, sa, read_committed=isolation == "read committed")
        self._held.add(held)
        return held

    async def _give_back(self, held: _HeldConnection, *, commit: bool) -> None:
        """End the block's transaction and free the connection; one that failed to end
        it is closed (SQLAlchemy's pool throws it away) and replaced when next needed."""
        try:
            await held.finish(commit=commit)
        except BaseException:
            try:
                await self._drop(held)
            finally:
                self._free.put_nowait(None)
            raise
        self._free.put_nowait(held)

    async def _drop(self, held: _HeldConnection) -> None:
        self._held.discard(held)
        with contextlib.suppress(Exception):  # it is being thrown away either way
            await held.sa.invalidate()
            await held.sa.close()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_HeldConnection]:
        """The connection for reads (or transactions the caller commits); whatever is
        left open at the end is rolled back, as a pool does on return."""
        held = await self._take()
        try:
            yield held
        finally:
            await self._give_back(held, commit=False)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_HeldConnection]:
        """One transaction: committed at the end, rolled back if the block raised."""
        held = await self._take()
        try:
            yield held
        except BaseException:
            await self._give_back(held, commit=False)
            raise
        await self._give_back(held, commit=True)

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        """One statement, a transaction by itself: sent without ``BEGIN`` and ``COMMIT``
        when it runs prepared (one round trip, not three); through SQLAlchemy, in the
        transaction SQLAlchemy begins, committed here."""
        async with self.begin() as held:
            held.alone = True
            return await held.execute(statement, parameters)

    async def execute_all(self, writes: Sequence[Write]) -> None:
        """The writes as one statement when they can be -- all but the last as
        data-modifying ``WITH`` queries of the last, one round trip and an implicit
        transaction -- else in a block (see :meth:`_as_one`)."""
        together = self._as_one(writes)
        if together is None:
            await execute_in_block(self, writes)
            return
        statement, values = together
        async with self.begin() as held:
            held.alone = True
            await held._run(statement, values)

    def _as_one(self, writes: Sequence[Write]) -> tuple[Prepared, list[Any]] | None:
        """One statement for ``writes`` and its values; None when the writes are not all
        prepared statements (watched, or not seen before), write one table twice (the
        queries of one statement share one snapshot, so the second would not see the
        first), expand a list, or carry a quoted literal (where renumbering ``$n``
        could change it)."""
        if len(writes) < 2 or self.statements.watched:
            return None
        parts: list[Prepared] = []
        counts: list[int] = []
        values: list[Any] = []
        tables: set[Any] = set()
        for statement, parameters in writes:
            table = getattr(statement, "table", None)
            prepared = self.statements.get(statement, parameters)
            given = prepared.values(parameters) if prepared is not None else None
            if prepared is None or given is None or table is None or table in tables:
                return None
            if prepared.expanding or "'" in prepared.sql:
                return None
            tables.add(table)
            parts.append(prepared)
            counts.append(len(given))
            values += given
        key = tuple(parts)
        together = self._together.get(key)
        if together is None:
            together = self._together[key] = Prepared(
                _with_queries(parts, counts), (), None, rows_shown=False
            )
        return together, values

    async def reclaim(self, table: Table) -> None:
        """``VACUUM`` the table (see :meth:`~._database.Database.reclaim`): outside any
        transaction, as it must run; it waits for no writer, and none waits for it."""
        name = self.dialect.identifier_preparer.format_table(table)
        async with self.connect() as held:
            try:
                await held.raw.execute(f"VACUUM {name}")
            except Exception as error:  # noqa: BLE001 - raised again as SQLAlchemy raises it
                held._raise(error, f"VACUUM {name}", [])

    async def dispose(self) -> None:
        """Close the kept connections, the owner's (letting the database go) and the
        engine."""
        if self.owner is not None:
            owner, self.owner = self.owner, None
            await owner.invalidate()  # closed, not pooled: its session lock goes with it
        for held in list(self._held):
            self._held.discard(held)
            await held.sa.close()
        await self.engine.dispose()


def _with_queries(parts: Sequence[Prepared], counts: Sequence[int]) -> str:
    """``WITH w0 AS (first), ... last``: each part's parameters numbered on past the
    ``counts`` of values of the parts before it. A data-modifying ``WITH`` query runs
    whether or not it is read."""
    offset = 0
    numbered = []
    for part, count in zip(parts, counts, strict=True):
        pieces = _PLACEHOLDER.split(part.sql)  # text, number, text, number, ..., text
        pieces[1::2] = [f"${int(n) + offset}" for n in pieces[1::2]]
        numbered.append("".join(pieces))
        offset += count
    *first, last = numbered
    return "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(first)) + " " + last
