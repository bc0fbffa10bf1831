"""Where simulators keep state: embedded defaults, or real servers given by URL.

One code path for both sides of each row of DESIGN.md's table:

* database -- SQLAlchemy (:mod:`._database`). Default: a SQLite database per service
  on a temporary file of its own, in one scratch folder per process (removed when the
  database is disposed, as the mesh does when it stops), so its rows stay out of the
  process's memory however long the run. Given a PostgreSQL URL, each service gets its own
  database on that server, ``<prefix>_<service>``, created when missing
  (database-per-service: no service touches another's database).
* cache and counters -- redis-py's asyncio client. Default: fakeredis; given a Redis URL,
  that server (``key_prefix`` keeps runs apart).
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import secrets
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy and redis load when a backend is opened, not with the plan
    import redis.asyncio as aioredis
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ._postgres import PostgresDatabase

import orjson

from ._database import Database, EmbeddedDatabase, json_text

__all__ = [
    "Backends",
    "DatabaseUnavailable",
    "RedisUnavailable",
    "database_name",
    "open_database",
    "open_redis",
    "reach_redis",
]


CONNECTIONS = 8  # per service, on a PostgreSQL server
_OWNER_KEY = 0x65636F6D  # "ecom": the advisory lock of the process using a database
_TRY_LOCK = "SELECT pg_try_advisory_lock(:key)"
_LOCK_HOLDER = (
    "SELECT a.application_name, to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS') AS since"
    " FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objsubid = 1"
    " AND l.objid = CAST(:key AS oid)"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class DatabaseUnavailable(RuntimeError):
    """The PostgreSQL server given cannot be used (unreachable, refusing the role...)."""


class RedisUnavailable(RuntimeError):
    """The Redis server given cannot be used (unreachable, refusing the password...)."""


@dataclass(frozen=True, slots=True)
class Backends:
    """Real backends to use; None means the embedded default."""

    database_url: str | None = None  # e.g. postgresql://127.0.0.1:5432/postgres
    redis_url: str | None = None  # e.g. redis://127.0.0.1:6379/0
    database_prefix: str = "ecom"


def database_name(prefix: str, component: str) -> str:
    """``order-svc`` -> ``ecom_order_svc``: one PostgreSQL database per service."""
    return re.sub(r"[^a-z0-9_]", "_", f"{prefix}_{component}".lower())


async def open_database(component: str, backends: Backends) -> Database:
    """The component's own database: embedded (see :class:`EmbeddedDatabase`), or the
    server's (see :class:`~._postgres.PostgresDatabase`), created there if missing."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.ext.asyncio import create_async_engine

    from ._postgres import PostgresDatabase

    if backends.database_url is None:
        path = _scratch_file(component)
        embedded = EmbeddedDatabase(str(path))
        _remove_when_disposed(embedded, path)
        return embedded
    url = make_url(backends.database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            f"unsupported database URL '{url.render_as_string()}': use postgresql://HOST:PORT/DB"
        )
    # asyncpg, not psycopg: a third less CPU per transaction and nearly half per read
    # (measured here through SQLAlchemy's asyncio engine), which is most of what an order
    # costs the mesh on PostgreSQL (issue 15).
    server = url.set(drivername="postgresql+asyncpg")
    name = database_name(backends.database_prefix, component)
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except (OSError, SQLAlchemyError) as exc:  # refused, unknown role...: name the server
        why = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise DatabaseUnavailable(f"PostgreSQL at {url.render_as_string()}: {why}") from exc
    finally:
        await admin.dispose()
    # Eight connections kept per service for the simulator's blocks (and one in the pool
    # besides, for anything that asks the engine itself), no more opened: a connection
    # opened for a burst and closed after it (an overflow) costs the server a process
    # start each time.
    engine = create_async_engine(
        server.set(database=name),
        pool_size=CONNECTIONS + 2,  # and the owner's (see _own)
        max_overflow=0,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        connect_args={"server_settings": {"application_name": f"ecom-harness pid {os.getpid()}"}},
    )
    database = PostgresDatabase(engine, CONNECTIONS)
    try:
        database.owner = await _own(database, f"{name} at {url.render_as_string()}")
    except BaseException:
        await database.dispose()
        raise
    return database


async def _own(database: PostgresDatabase, where: str) -> AsyncConnection:
    """A connection holding the database's advisory lock for as long as it is open.

    Two processes on one set of databases (a second ``up``, or a ``run`` beside an
    ``up``: both name them ``ecom_<service>``) each overwrite what the other keeps --
    seen: confirmation emails never sent, units left reserved, duplicate keys. So the
    second is refused, naming the process of the first (every connection's
    ``application_name`` is ``ecom-harness pid <pid>``)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    conn = await database.engine.connect()
    try:
        if await conn.scalar(text(_TRY_LOCK), {"key": _OWNER_KEY}):
            await conn.rollback()  # ends SQLAlchemy's transaction; the lock is the session's
            return conn
        holder = (await conn.execute(text(_LOCK_HOLDER), {"key": _OWNER_KEY})).first()
    except (OSError, SQLAlchemyError) as exc:
        await conn.close()
        why = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise DatabaseUnavailable(f"PostgreSQL database {where}: {why}") from exc
    await conn.close()
    who = "another client"
    if holder is not None:
        who = f"{holder.application_name or 'another client'} since {holder.since}"
    raise DatabaseUnavailable(
        f"PostgreSQL database {where} is in use by {who}: two meshes or stubs sharing a "
        "service's database overwrite each other's state; stop the other one first"
    )


def _scratch_file(component: str) -> Path:
    """A fresh file in this process's scratch folder (:func:`_scratch_folder`)."""
    name = f"{database_name('db', component)}-{secrets.token_hex(6)}.sqlite"
    return _scratch_folder(os.getpid(), tempfile.gettempdir()) / name


@functools.cache
def _scratch_folder(owner: int, under: str) -> Path:
    """One folder per process (and temporary directory: ``TMPDIR``) for the databases'
    files -- a folder made per database cost a mesh's start and stop a millisecond
    each on this machine's file system -- removed, with anything left in it, when the
    process that made it exits."""
    folder = Path(tempfile.mkdtemp(prefix="ecom-harness-state-", dir=under))

    def remove() -> None:
        if os.getpid() == owner:  # not by a forked worker, whose exit runs this too
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    return folder


_COMPANIONS = ("", "-wal", "-shm", "-journal")  # SQLite's files of one database


def _remove_when_disposed(engine: Database, path: Path) -> None:
    """Delete the database at ``path`` (with any companion file SQLite made) when
    ``engine`` is disposed, or at the latest when it is collected; only by the process
    that made it (a forked worker disposing its copy of the engine leaves it alone)."""
    from sqlalchemy import event

    owner = os.getpid()

    def remove(path: Path) -> None:
        if os.getpid() == owner:
            for suffix in _COMPANIONS:
                path.with_name(path.name + suffix).unlink(missing_ok=True)

    cleanup = weakref.finalize(engine.sync_engine, remove, path)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: cleanup())


def open_redis(backends: Backends) -> aioredis.Redis:
    """A Redis client: the server at ``redis_url``, or an in-process fakeredis."""
    import fakeredis
    import redis.asyncio as aioredis

    if backends.redis_url is None:
        return fakeredis.FakeAsyncRedis(decode_responses=True)
    return aioredis.Redis.from_url(backends.redis_url, decode_responses=True)


async def reach_redis(client: aioredis.Redis, backends: Backends) -> None:
    """Fail at start, naming the server, when the Redis given cannot be used: otherwise
    the first simulator to touch it fails with redis-py's words alone ("Error 111
    connecting to 127.0.0.1:1"), which do not say which of the backends it was. The
    URL is shown as the PostgreSQL one is, its password as ``***``."""
    from redis.exceptions import RedisError
    from sqlalchemy.engine import make_url

    if backends.redis_url is None:
        return
    try:
        await client.ping()
    except (OSError, RedisError) as exc:
        why = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        where = make_url(backends.redis_url).render_as_string()
        raise RedisUnavailable(f"Redis at {where}: {why}") from exc
