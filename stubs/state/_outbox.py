"""The transactional outbox: events are written in the same transaction as the state
change that caused them, and a relay publishes them afterwards.

So no event is lost while the bus is briefly down (the relay keeps them and retries),
and no event is published for a change that was rolled back. Each service keeps its
outbox in its own database. A row is deleted once its event is published (the bus, or
the broker, holds it from then on): the outbox holds only what is still to be sent and
what the bus refused, so it does not grow with the orders of a long run (issue 15).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import string
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    all_,
    any_,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError

from ecom_harness.specs import MessageRejected
from ecom_harness.stubs.events import Outgoing

from ._database import Connection, Database, Write, insert_into, modifies_in_with

__all__ = ["OutboxRelay", "add_event", "event_write", "make_event", "new_id", "outbox_table"]

logger = logging.getLogger(__name__)
MAX_BACKOFF = 5.0  # seconds between retries while the bus stays down
RECLAIM_AFTER = 256  # rows an outbox deletes between two reclaims of their space
_ALPHABET = string.ascii_letters + string.digits


class _RandomBytes:
    """The OS's randomness, read 4 KiB at a time: one system call per id was 1.5% of the
    mesh's loop under load (issue 15). A forked child starts with an empty buffer, so it
    never hands out the bytes its parent does."""

    def __init__(self, chunk: int = 4096):
        self.chunk, self.buffer, self.used = chunk, b"", 0
        self._lock = threading.Lock()  # stubs may run on a thread of their own (exports)
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self.buffer, self.used = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self.used + count > len(self.buffer):
                self.buffer, self.used = os.urandom(max(self.chunk, count)), 0
            taken = self.buffer[self.used : self.used + count]
            self.used += count
            return taken


_random = _RandomBytes()


def new_id(prefix: str, length: int = 12) -> str:
    """``ord_7Hq2Kd9xLmQ1``: the platform's prefixed ids (see specs/CONVENTIONS.md).

    Base-62 digits of a random number with 64 bits to spare (a ``secrets.choice`` per
    character was 5% of the mesh's loop, issue 15)."""
    number = int.from_bytes(_random.take(length + 8))
    digits = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(digits)


def make_event(
    event_type: str, source: str, order_id: str, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The envelope every event travels in (asyncapi/commerce-events.yaml)."""
    return {
        "id": new_id("evt"),
        "type": event_type,
        "source": source,
        "time": now.isoformat().replace("+00:00", "Z"),
        "schema_version": 1,
        "order_id": order_id,
        "data": data,
    }


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table, defined in a simulator's own (class-level) metadata."""
    return Table(
        "outbox",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("topic", String(64), nullable=False),
        Column("key", String(64), nullable=False),
        Column("event", JSON, nullable=False),
        # Published rows are deleted (see OutboxRelay); kept as a column so databases
        # made by earlier versions (PostgreSQL keeps them) still fit.
        Column("published", Boolean, nullable=False, default=False, index=True),
        # Why the bus refused the event: a stub bug, set aside so it blocks nothing.
        Column("rejected", String(2000), nullable=True),
    )


async def add_event(
    conn: Connection, table: Table, topic: str, key: str, event: dict[str, Any]
) -> None:
    """Queue an event inside the caller's transaction (call ``relay.wake()`` after it
    commits for prompt delivery). The values go as parameters of a statement SQLAlchemy
    compiles once per table (``insert().values(...)`` built and compiled one per call)."""
    await conn.execute(*event_write(table, topic, key, event))


def event_write(table: Table, topic: str, key: str, event: dict[str, Any]) -> Write:
    """The outbox row of an event as a write, for ``Database.execute_all`` with the
    writes it belongs with (call ``relay.wake()`` after)."""
    return insert_into(table), {"topic": topic, "key": key, "event": event, "published": False}


def _published_then_pending(table: Table) -> Select[Any]:
    """The deletion of the published rows (``w_seqs``) as a data-modifying ``WITH``
    query of the read of the pending ones, which leaves them out itself: both run on
    one snapshot, where the deleted rows are still there."""
    seqs = bindparam("w_seqs", type_=ARRAY(Integer))
    gone = delete(table).where((table.c.seq == any_(seqs)) | table.c.published.is_(True))
    return (
        select(table)
        .where(
            table.c.published.is_(False),
            table.c.rejected.is_(None),
            table.c.seq != all_(seqs),
        )
        .order_by(table.c.seq)
        .add_cte(gone.cte("gone"))
    )


class OutboxRelay:
    """Publishes one service's outbox to the bus, in order, retrying while it is down.

    An event the bus *rejects* (it breaks the AsyncAPI contract) will never pass: it is
    set aside with the reason, logged as an error and listed by :meth:`rejected`, so one
    simulator bug neither blocks the outbox forever nor disappears silently.
    """

    def __init__(self, table: Table, db: Database, bus: Any, publisher: str):
        self.table, self.db, self.bus, self.publisher = table, db, bus, publisher
        # Built once, not per pass (see inventory-svc's statements).
        self._pending = (
            select(table)
            .where(table.c.published.is_(False), table.c.rejected.is_(None))
            .order_by(table.c.seq)
        )
        self._published = delete(table).where(
            table.c.seq.in_(bindparam("w_seqs", expanding=True)) | table.c.published.is_(True)
        )
        self._published_then_pending = (
            _published_then_pending(table) if modifies_in_with(db) else None
        )
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one pass at a time: direct calls and the background one
        self.failing = 0  # failed passes in a row (the bus is down)
        # Every row is deleted once published: its space is reclaimed every so many
        # (see Database.reclaim), and at start for what an earlier run left.
        self.reclaim_after = RECLAIM_AFTER
        self._deleted = 0
        self._reclaim_refused = False

    def wake(self) -> None:
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish every pending event in order; stop at the first failure (the bus is
        down) so order is kept. Returns how many were published."""
        if self.bus is None:
            return 0
        async with self._lock:
            return await self._relay_pending()

    async def _relay_pending(self) -> int:
        """Pass after pass while events keep coming, on PostgreSQL: each pass's deletion
        of what it published also reads what is pending now (see :meth:`_forget`)."""
        async with self.db.connect() as conn:
            pending = (await conn.execute(self._pending)).all()
        relayed = 0
        while pending:
            published: list[int] = []
            try:
                bus_up = await self._publish(pending, published)
            except BaseException:
                await self._forget(published)
                raise
            relayed += len(published)
            pending = await self._forget(published, then_read=bus_up)
        return relayed

    async def _publish(self, pending: Sequence[Row[Any]], published: list[int]) -> bool:
        """Publish ``pending`` in order, adding each published row's seq to
        ``published``; False when the bus is down (the rest wait for the next pass)."""
        records = [Outgoing(row.topic, row.key, row.event) for row in pending]
        try:  # in order, one wait for the broker for all of them (see publish_in_order)
            outcomes = await self.bus.publish_in_order(records, publisher=self.publisher)
        except Exception as exc:  # noqa: BLE001 - the bus is not running: as if down
            outcomes = [exc] * len(records)
        for row, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, MessageRejected):
                logger.error(
                    "outbox of %s: event %s rejected by the bus: %s",
                    self.publisher,
                    row.seq,
                    outcome,
                )
                await self._mark([row.seq], rejected=str(outcome)[:2000])
                continue
            if isinstance(outcome, Exception):  # the bus is down: kept for the next pass
                if not self.failing:  # one line per outage, not one per attempt
                    logger.warning(
                        "outbox of %s: publish failed, retrying with backoff: %s",
                        self.publisher,
                        outcome,
                    )
                self.failing += 1
                return False
            if self.failing:
                logger.warning(
                    "outbox of %s: publishing again after %d failed attempt(s)",
                    self.publisher,
                    self.failing,
                )
                self.failing = 0
            published.append(row.seq)
        return True

    async def _mark(self, seqs: list[int], **values: Any) -> None:
        if seqs:
            await self.db.execute(
                update(self.table).where(self.table.c.seq.in_(seqs)).values(**values)
            )

    async def _forget(self, seqs: list[int], *, then_read: bool = False) -> Sequence[Row[Any]]:
        """Delete the rows of published events (and any an earlier version kept marked
        ``published``): one write per pass (a transaction per event cost each service's
        database more than the events did, under load); a crash before it only means a
        redelivery, which the bus's at-least-once consumers expect. Published rows are
        deleted, not marked: kept, they were the outbox's whole history (issue 15, flat
        memory).

        With ``then_read``, on PostgreSQL, the events pending now are read by the same
        statement and returned, for the pass to go on with: under load the next pass's
        read was a round trip of every pass (issue 15). On SQLite nothing is read (a
        read after every batch made the embedded mesh no faster): the next wake does."""
        pending: Sequence[Row[Any]] = ()
        if then_read and self._published_then_pending is not None:
            self._wake.clear()  # an event committed after this read wakes the next pass
            pending = (await self.db.execute(self._published_then_pending, {"w_seqs": seqs})).all()
        elif seqs:
            await self.db.execute(self._published, {"w_seqs": seqs})
        self._deleted += len(seqs)
        if self._deleted >= self.reclaim_after:
            await self.reclaim()
        return pending

    async def reclaim(self) -> None:
        """Make the deleted rows' space reusable (``VACUUM`` on PostgreSQL). One that
        fails (a database user that does not own the table may not) is logged once and
        costs nothing else: the outbox works as before, only its reads grow slower."""
        self._deleted = 0
        try:
            await self.db.reclaim(self.table)
        except DBAPIError as refused:
            if not self._reclaim_refused:
                logger.warning(
                    "outbox of %s: its space cannot be reclaimed: %s", self.publisher, refused
                )
            self._reclaim_refused = True

    def start(self, interval: float = 0.2) -> None:
        """Relay in the background: at once when woken, and every ``interval`` seconds
        to retry what failed."""

        async def run() -> None:
            await self.reclaim()
            while True:
                if self.failing:  # the bus is down: back off, whatever wakes us
                    await asyncio.sleep(min(interval * 2**self.failing, MAX_BACKOFF))
                else:
                    with contextlib.suppress(TimeoutError):  # no task per pass, unlike wait_for
                        async with asyncio.timeout(interval):
                            await self._wake.wait()
                self._wake.clear()
                await self.relay_once()

        if self.bus is not None and self._task is None:
            self._task = asyncio.create_task(run(), name=f"outbox-relay-{self.publisher}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def pending(self) -> int:
        """Events still waiting for the bus (rejected ones excluded: see :meth:`rejected`)."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(self.table.c.seq).where(
                    self.table.c.published.is_(False), self.table.c.rejected.is_(None)
                )
            )
            return len(rows.all())

    async def rejected(self) -> list[tuple[dict[str, Any], str]]:
        """Events the bus refused, with why: each one is a simulator bug."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(self.table.c.event, self.table.c.rejected).where(
                    self.table.c.rejected.is_not(None)
                )
            )
            return [(row.event, row.rejected) for row in rows]
