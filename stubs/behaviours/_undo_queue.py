"""Undo work that must be done, however long it takes: a durable queue retried until done.

A saga's compensation (release a reservation, refund a charge, cancel a shipment) can
fail like any call -- a peer down, a pooled connection closed under it, a timeout. Then
dropping it leaves the customer charged or the stock locked, so a step that did not
finish is written to the component's own database (``undo_steps``) and retried in the
background until its handler says it is done; a restart picks the queue up again.

Each step is a kind (what to undo), the order it belongs to and a JSON payload (what the
handler needs); the handler decides what "done" means (a 404 or 409 from the peer, "there
is nothing left to undo", is done too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, delete, select, update

from ecom_harness.stubs.state import Database

__all__ = ["UndoHandler", "UndoQueue", "undo_table"]

logger = logging.getLogger(__name__)

# (kind, order id, payload) -> True when the step is done (nothing left to retry)
UndoHandler = Callable[[str, str, dict[str, Any]], Awaitable[bool]]


def undo_table(metadata: MetaData) -> Table:
    return Table(
        "undo_steps",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("kind", String(40), nullable=False),
        Column("order_id", String(40), nullable=False, index=True),
        Column("payload", JSON, nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
    )


class UndoQueue:
    """Steps written by :meth:`add`, retried by a background loop (:meth:`start`) every
    ``interval`` seconds (doubling per failed attempt of a step, up to ``max_interval``)
    until ``handler`` says each is done."""

    def __init__(self, table: Table, db: Database, handler: UndoHandler):
        self.table, self.db, self.handler = table, db, handler
        self.interval, self.max_interval = 0.2, 5.0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def add(self, kind: str, order_id: str, payload: dict[str, Any]) -> None:
        step = {"kind": kind, "order_id": order_id, "payload": payload, "attempts": 0}
        await self.db.execute(self.table.insert(), step)
        self._idle.clear()

    async def pending(self, order_id: str | None = None) -> list[tuple[str, str, int]]:
        """``(kind, order id, attempts)`` of every step not done yet, oldest first."""
        query = select(self.table).order_by(self.table.c.seq)
        if order_id is not None:
            query = query.where(self.table.c.order_id == order_id)
        async with self.db.connect() as conn:
            return [(r.kind, r.order_id, r.attempts) for r in await conn.execute(query)]

    async def run_once(self, kinds: frozenset[str] | None = None) -> int:
        """Try every pending step (of ``kinds``, if given) once, oldest first; returns
        how many of those are still pending."""
        query = select(self.table).order_by(self.table.c.seq)
        if kinds is not None:
            query = query.where(self.table.c.kind.in_(sorted(kinds)))
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        left = 0
        for row in rows:
            try:
                done = await self.handler(row.kind, row.order_id, dict(row.payload))
            except Exception:
                logger.exception("undo step %s of %s failed", row.kind, row.order_id)
                done = False
            async with self.db.begin() as conn:
                if done:
                    await conn.execute(delete(self.table).where(self.table.c.seq == row.seq))
                else:
                    left += 1
                    await conn.execute(
                        update(self.table)
                        .where(self.table.c.seq == row.seq)
                        .values(attempts=self.table.c.attempts + 1)
                    )
        return left

    def start(self, interval: float = 0.2, max_interval: float = 5.0) -> None:
        self.interval, self.max_interval = interval, max_interval
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        """A step's first retry comes ``interval`` seconds after it was queued (whoever
        queued it has just tried it), then backs off while steps keep failing."""
        delay = self.interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            left = await self.run_once()
            if not left:
                self._idle.set()
                delay = self.interval
            else:
                delay = min(delay * 2, self.max_interval)

    async def settled(self, timeout: float) -> None:
        """Return once no step is pending (tests, the harness); TimeoutError after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while await self.pending():
                self._wake.set()
                self._idle.clear()
                await self._idle.wait()
