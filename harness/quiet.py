"""Keeping timed steps fair when scenarios run side by side.

Scenarios in parallel share one process and its event loop, so one scenario's work can
slow another's answers. A step with a timing bound (``under_ms``) therefore runs alone:
it waits until no other step is in flight and keeps new ones out until it has its
answer. Ordinary steps run together freely. (Background work a scenario already set off,
outbox relays and consumers, is not held back; it is small next to a request.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["Quiet"]


class Quiet:
    """A readers-writer lock: ``shared()`` for ordinary steps, ``alone()`` for timed ones
    (a waiting ``alone()`` goes before newly arriving ``shared()`` steps)."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._shared = 0
        self._alone = False
        self._waiting_alone = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._alone and not self._waiting_alone)
            self._shared += 1
        try:
            yield
        finally:
            async with self._changed:
                self._shared -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        async with self._changed:
            self._waiting_alone += 1
            await self._changed.wait_for(lambda: not self._alone and not self._shared)
            self._waiting_alone -= 1
            self._alone = True
        try:
            yield
        finally:
            async with self._changed:
                self._alone = False
                self._changed.notify_all()
