"""The simulators' database handle: SQLAlchemy's asyncio engine for PostgreSQL, and for
the embedded default a synchronous engine on a SQLite file behind the same interface.

Simulators speak to :class:`Database` and :class:`Connection` only: ``async with
db.begin() as conn`` (one transaction, committed at the end unless it raised) or ``async
with db.connect() as conn`` (reads), then ``await conn.execute(statement, params)``; a
write that is a transaction by itself is ``await db.execute(statement, params)`` (on
PostgreSQL, one round trip instead of three: see :meth:`Database.execute`), and writes
that need nothing from each other are ``await db.execute_all([(statement, params), ...])``
(on PostgreSQL, one round trip instead of two more than there are writes).

Why the embedded database is not an ``AsyncEngine``: a statement on a local SQLite file
takes microseconds and never waits for anything, so awaiting it buys nothing, while the
asyncio engine's machinery costs more than the statement. Each of its transactions
switched greenlets four times, made a shielded task to close the connection and went
round the event loop three times: 84 us for an empty transaction and 141 us for a
one-row update, against 2.5 us and 21 us on a synchronous connection (this machine,
issue 15). Under load that was a fifth of the mesh's loop. The statements and the SQL
they compile to are SQLAlchemy's either way, and so are the rows; a statement seen
before runs prepared on the sqlite3 connection (``_prepared``: SQLAlchemy's own
execution machinery cost twice SQLite's work), in the block's transaction.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import orjson

if TYPE_CHECKING:
    from sqlalchemy import URL, CursorResult, Engine, Executable, Insert, ScalarResult, Table
    from sqlalchemy import Connection as SyncConnection
    from sqlalchemy.dialects import postgresql, sqlite

    from ._prepared import StatementCache

__all__ = [
    "PRAGMAS",
    "Connection",
    "Database",
    "EmbeddedDatabase",
    "ScalarShortcuts",
    "Write",
    "execute_in_block",
    "insert_if_new",
    "insert_into",
    "modifies_in_with",
    "upsert_into",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: A write for :meth:`Database.execute_all`: a statement and its parameters.
Write = tuple["Executable", Mapping[str, Any]]

# Set on every embedded connection: a scratch file, as fast as memory. The one connection
# holds the file's lock for good (no lock calls per transaction); the rollback journal
# stays in memory, so a commit writes its pages once, into the file (a write-ahead log
# wrote them twice, to the log and again at each checkpoint: 5 us more per transaction);
# no fsync (the file is thrown away with the mesh); temporary tables stay in memory.
PRAGMAS = ("locking_mode=EXCLUSIVE", "journal_mode=MEMORY", "synchronous=OFF", "temp_store=MEMORY")


@functools.cache
def insert_into(table: Table) -> Insert:
    """``table.insert()``, built once per table: a new statement per call also meant a
    new cache key to compute for each of the hottest statements (events, saga steps)."""
    return table.insert()


def upsert_into(database: Database, table: Table, key: str) -> Insert:
    """``INSERT`` into ``table`` that, when a row with the same ``key`` is there,
    updates that row's other columns instead: one statement (an update first and an
    insert when it found nothing made two round trips)."""
    statement = _insert_or(database, table)
    others = {c.name: statement.excluded[c.name] for c in table.columns if c.name != key}
    return statement.on_conflict_do_update(index_elements=[key], set_=others)


def insert_if_new(database: Database, table: Table) -> Insert:
    """``INSERT`` into ``table`` that adds nothing (rowcount 0) when a row with the
    same unique key is there: a check and an insert in one statement."""
    return _insert_or(database, table).on_conflict_do_nothing()


def modifies_in_with(database: Database) -> bool:
    """Whether ``database`` runs data-modifying ``WITH`` queries (an ``UPDATE`` whose
    ``RETURNING`` rows another statement reads): PostgreSQL does, SQLite does not."""
    return database.sync_engine.dialect.name == "postgresql"


def _insert_or(database: Database, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``database``'s dialect's ``INSERT``, which can say what a conflict does
    (PostgreSQL and SQLite say it alike, ``ON CONFLICT ...``)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if database.sync_engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def json_text(value: Any) -> str:
    """JSON columns' text, by orjson (the standard library's encoder was 2% of the
    mesh's loop under load); keys that are not strings are written as strings, as the
    standard library does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class Connection(Protocol):
    """What a simulator does with a connection (``AsyncConnection`` is one)."""

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...

    async def scalars(self, statement: Executable, parameters: Any = None) -> ScalarResult[Any]: ...

    async def run_sync(
        self,
        fn: Callable[Concatenate[SyncConnection, _P], _T],
        *arg: _P.args,
        **kw: _P.kwargs,
    ) -> _T: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class Database(Protocol):
    """What a simulator does with its database (``AsyncEngine`` is one)."""

    @property
    def sync_engine(self) -> Engine: ...

    @property
    def url(self) -> URL: ...

    def connect(self) -> AbstractAsyncContextManager[Connection]: ...

    def begin(self) -> AbstractAsyncContextManager[Connection]: ...

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        """One statement, a transaction by itself: committed when this returns, nothing
        of it kept if it raised, as ``async with db.begin() as conn: await
        conn.execute(...)`` would be.

        Why apart from :meth:`begin`: on PostgreSQL a block is ``BEGIN``, the statement
        and ``COMMIT``, three round trips, where a statement alone is atomic by itself
        (the server's implicit transaction) and takes one. Three blocks in four of an
        order were one statement each (issue 15)."""
        ...

    async def execute_all(self, writes: Sequence[Write]) -> None:
        """Writes that need nothing from each other (no row, no count), as one
        transaction: all kept, or none if one raised.

        Why apart from :meth:`begin`: on PostgreSQL they go as one statement where it
        can (see ``PostgresDatabase.execute_all``), one round trip where ``BEGIN``, each
        write and ``COMMIT`` were one each."""
        ...

    async def reclaim(self, table: Table) -> None:
        """Make the space of ``table``'s deleted rows reusable.

        Why: a queue table (an outbox deletes every row it inserts) grows on PostgreSQL
        until vacuumed, and each read of it scans every page it ever had: where
        autovacuum is off or behind, the relay's one read per pass came to a millisecond
        of the server's CPU each, and most of what an order cost it (issue 15). SQLite
        reuses the pages of deleted rows by itself."""
        ...

    async def dispose(self) -> None: ...


async def execute_in_block(database: Database, writes: Sequence[Write]) -> None:
    """``writes`` one after the other in one transaction (:meth:`Database.execute_all`
    where nothing better is done); a write alone is a statement alone (no ``BEGIN``)."""
    if len(writes) == 1:
        await database.execute(*writes[0])
        return
    async with database.begin() as conn:
        for statement, parameters in writes:
            await conn.execute(statement, parameters)


class ScalarShortcuts:
    """``scalar`` and ``scalars``, as SQLAlchemy's connections have them, by a subclass's
    ``execute``."""

    __slots__ = ()

    execute: Callable[[Executable, Any], Awaitable[CursorResult[Any]]]

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def scalars(self, statement: Executable, parameters: Any = None) -> ScalarResult[Any]:
        return (await self.execute(statement, parameters)).scalars()


class _InlineConnection(ScalarShortcuts):
    """A :class:`Connection` running each call at once on a synchronous connection;
    statements it has seen before run prepared (``_prepared``), unless something
    listens to the statements the engine runs."""

    __slots__ = ("database", "prepare", "sync_connection")

    def __init__(self, database: EmbeddedDatabase, sync_connection: SyncConnection):
        self.database = database
        self.sync_connection = sync_connection
        self.prepare = not database.statements.watched  # asked per block, not per statement

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        database, connection = self.database, self.sync_connection
        if type(parameters) is list and len(parameters) == 1:
            parameters = parameters[0]  # one row: SQLAlchemy runs it as one execution too
        if self.prepare and (parameters is None or type(parameters) is dict):
            given = parameters or {}
            prepared = database.statements.get(statement, given)
            values = prepared.values(given) if prepared is not None else None
            if prepared is not None and values is not None:
                return cast("CursorResult[Any]", prepared.run(database.dbapi(connection), values))
        result = connection.execute(statement, parameters)
        if result.returns_rows:
            # Read now, as the asyncio engine's drivers do: rows read after the block
            # ended would otherwise see what other tasks wrote since.
            return cast("CursorResult[Any]", result.freeze()())
        return result

    async def run_sync(
        self,
        fn: Callable[Concatenate[SyncConnection, _P], _T],
        *arg: _P.args,
        **kw: _P.kwargs,
    ) -> _T:
        return fn(self.sync_connection, *arg, **kw)

    async def commit(self) -> None:
        self.database.finish(self.sync_connection, commit=True)

    async def rollback(self) -> None:
        self.database.finish(self.sync_connection, commit=False)


class EmbeddedDatabase:
    """A SQLite file used through one synchronous connection, by one task at a time.

    The lock is held for a whole ``begin()`` or ``connect()`` block, as a pool of one
    connection would hold its connection: a task awaiting something inside its
    transaction keeps the others out, so one task's rollback can never undo another's
    work. Taking a free lock does not yield to the loop."""

    def __init__(self, path: str):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        from ._prepared import StatementCache

        self.path = path
        self.sync_engine: Engine = create_engine(
            f"sqlite:///{path}",
            creator=self._open,
            poolclass=StaticPool,
            json_serializer=json_text,
            json_deserializer=orjson.loads,
        )
        self.statements: StatementCache = StatementCache(self.sync_engine)
        self._lock = asyncio.Lock()
        self._connection: SyncConnection | None = None
        self._dbapi: sqlite3.Connection | None = None

    def dbapi(self, connection: SyncConnection) -> sqlite3.Connection:
        """The sqlite3 connection under ``connection`` (the one held)."""
        if self._dbapi is None:
            self._dbapi = cast("sqlite3.Connection", connection.connection.dbapi_connection)
        return self._dbapi

    @property
    def url(self) -> URL:
        return self.sync_engine.url

    def _open(self) -> sqlite3.Connection:
        # room for every statement the simulators prepare (the default keeps 128)
        connection = sqlite3.connect(self.path, check_same_thread=False, cached_statements=512)
        for pragma in PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
        return connection

    def _held(self) -> SyncConnection:
        if self._connection is None or self._connection.closed:
            self._connection = self.sync_engine.connect()
            self._dbapi = None
        return self._connection

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_InlineConnection]:
        """The connection for reads (or transactions the caller commits); whatever is
        left open at the end is rolled back, as a pool does on return."""
        async with self._lock:
            connection = self._held()
            try:
                yield _InlineConnection(self, connection)
            finally:
                self.finish(connection, commit=False)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_InlineConnection]:
        """One transaction: committed at the end, rolled back if the block raised."""
        async with self._lock:
            connection = self._held()
            try:
                yield _InlineConnection(self, connection)
            except BaseException:
                self.finish(connection, commit=False)
                raise
            self.finish(connection, commit=True)

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        """One statement in a block of its own (see :meth:`Database.execute`)."""
        async with self.begin() as conn:
            return await conn.execute(statement, parameters)

    async def execute_all(self, writes: Sequence[Write]) -> None:
        """In one block: a local file has no round trips to save."""
        await execute_in_block(self, writes)

    def finish(self, connection: SyncConnection, *, commit: bool) -> None:
        """End the open transaction, if any: SQLAlchemy's, when its path ran a statement
        (it began one, and ends sqlite3's with it), else sqlite3's own, begun by the
        first prepared write. No transaction object is made per block: SQLAlchemy's
        begin and commit cost more than SQLite's commit itself (issue 15)."""
        if connection.in_transaction():
            if commit:
                connection.commit()
            else:
                connection.rollback()
        dbapi = self.dbapi(connection)
        if dbapi.in_transaction:
            if commit:
                dbapi.commit()
            else:
                dbapi.rollback()

    async def reclaim(self, table: Table) -> None:
        """Nothing to do: SQLite reuses the pages of deleted rows (see
        :meth:`Database.reclaim`)."""

    async def dispose(self) -> None:
        """Close the connection and the engine (``engine_disposed`` fires)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._dbapi = None
        self.sync_engine.dispose()
