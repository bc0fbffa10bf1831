"""The embedded database's driver: SQLite on a temporary file, run on the event loop's own thread.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives an aiosqlite connection, which runs
every call on a thread of its own and hands the result back through the loop. For a
database in memory the statement takes microseconds and the two hand-offs cost far
more: with one such thread per service, the mesh spent more than a third of its event
loop passing the GIL back and forth with them (py-spy, issue 15). This module gives the
dialect what it expects of aiosqlite -- awaitable ``cursor``, ``execute``, ``fetchall``,
``commit``, ``rollback``, ``close`` and ``create_function`` -- and runs each call
directly on the ``sqlite3`` connection: same SQL, same dialect, same transactions
(SQLAlchemy's pool still hands one connection to one task at a time), no thread.

The database is a temporary file, not ``:memory:``: in memory, every row a long run
wrote (orders, payments, reservations, mails) stayed in the process's RSS, about 20 KB
per order (issue 15, flat memory). On a file they live in the OS's page cache, and
SQLite keeps only its own bounded page cache (``cache_size``, 2 MiB) in the process.
Made durable for nothing: the file is scratch (removed when the engine is disposed),
so it is opened with ``synchronous=OFF`` (no fsync) and ``journal_mode=WAL`` (a commit
appends to the log), ``temp_store=MEMORY``: a statement does not wait for the disk,
and the event loop with it, any more than in memory.

(Tried once before and reverted: the confirmation emails then lagged by seconds. That
was the bus handing notify-svc one record at a time across all six partitions of a
topic, which the faster orders outran; notify-svc's subscription is now concurrent
across partitions, see ``Subscription`` in the events package.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["PRAGMAS", "InlineSQLite", "connect_inline"]

# Set on every connection: a scratch file, as fast as memory (see the module's docstring).
PRAGMAS = ("journal_mode=WAL", "synchronous=OFF", "temp_store=MEMORY")


class _Cursor:
    """An aiosqlite-shaped cursor over a ``sqlite3.Cursor``."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> _Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Now:
    """Stands in for aiosqlite's request queue, which SQLAlchemy's dialect uses directly
    to set the isolation level: the call runs at once and its future is resolved."""

    __slots__ = ()

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)
        else:
            future.set_result(result)


class InlineSQLite:
    """An aiosqlite-shaped connection over one ``sqlite3`` connection."""

    def __init__(self, connection: sqlite3.Connection):
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection  # aiosqlite's "open" flag
        self._tx = _Now()

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """aiosqlite's forced close (used by SQLAlchemy to terminate a connection)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level


async def connect_inline(path: str = ":memory:") -> InlineSQLite:
    """A connection to the database at ``path`` (``async_creator`` of SQLAlchemy's
    engine, with the path bound), opened with :data:`PRAGMAS`. ``check_same_thread`` is
    off because SQLAlchemy may close a pooled connection from its garbage-collection
    hook; every statement still runs on the loop's thread."""
    connection = sqlite3.connect(path, check_same_thread=False)
    for pragma in PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    return InlineSQLite(connection)
