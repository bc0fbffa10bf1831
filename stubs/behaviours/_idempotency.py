"""Helpers every idempotent operation shares (Stripe's, payment-svc's, order-svc's):
the identity of a request body, one lock per key so a concurrent retry waits for the
first attempt and replays its answer instead of running again, and how long a key is
remembered.

Keys are remembered for 24 hours (setting ``idempotency_ttl_seconds``), as Stripe
prunes its keys after at least 24 hours (specs/CONVENTIONS.md, "Idempotency"): long
enough for any client's retries, and the tables of stored answers stop growing with
every order of a long run (issue 15, flat memory). An older key counts as unused."""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Column

from ecom_harness.stubs.state import Connection, Database, Write

__all__ = ["DEFAULT_KEY_TTL", "KeyRetention", "KeyedLocks", "as_utc", "fingerprint"]

DEFAULT_KEY_TTL = timedelta(hours=24)  # Stripe's: keys are pruned after at least 24 hours
PRUNE_EVERY = timedelta(minutes=1)  # at most one pruning pass per this, per table


def fingerprint(params: Any) -> str:
    """A digest of a request's parameters, independent of their (JSON key) order."""
    return hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()


class KeyedLocks:
    """One asyncio lock per key, forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield


def as_utc(moment: datetime) -> datetime:
    """A time read back from the database as aware UTC (SQLite drops the zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class KeyRetention:
    """How long one table's idempotency keys are remembered, and the pruning of older
    ones: a key is expired ``ttl`` after it was first used (then it counts as unused,
    even before it is pruned), and expired rows are deleted, at most once per
    ``every``, by :meth:`prune` in a transaction that stores a key anyway. The same SQL
    on SQLite and PostgreSQL; times come from the simulator's clock, so tests move it."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        ttl: timedelta = DEFAULT_KEY_TTL,
        every: timedelta = PRUNE_EVERY,
    ):
        self.clock, self.ttl, self.every = clock, ttl, min(every, ttl)
        self._pruned: datetime | None = None

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], clock: Callable[[], datetime]
    ) -> KeyRetention:
        """From a simulator's setting ``idempotency_ttl_seconds`` (default 24 hours)."""
        seconds = settings.get("idempotency_ttl_seconds")
        return cls(clock, DEFAULT_KEY_TTL if seconds is None else timedelta(seconds=float(seconds)))

    def expired(self, created_at: datetime | None) -> bool:
        """Whether a key first used at ``created_at`` is forgotten by now (a row older
        than this column, from an earlier version, has none: expired)."""
        return created_at is None or as_utc(created_at) + self.ttl <= self.clock()

    async def prune(self, conn: Connection | Database, created_at: Column[Any]) -> None:
        """Delete the expired rows of ``created_at``'s table, unless that was done less
        than ``every`` ago: in ``conn``'s transaction, or as a statement of its own on a
        database."""
        pruning = self.pruning(created_at)
        if pruning is not None:
            await conn.execute(*pruning)

    def pruning(self, created_at: Column[Any]) -> Write | None:
        """The delete of :meth:`prune` as a write, for ``Database.execute_all``; None
        when it was done less than ``every`` ago."""
        now = self.clock()
        if self._pruned is not None and now - self._pruned < self.every:
            return None
        self._pruned = now
        table = created_at.table
        return table.delete().where(created_at.is_(None) | (created_at <= now - self.ttl)), {}
