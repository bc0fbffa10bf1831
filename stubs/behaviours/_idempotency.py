"""Helpers every idempotent operation shares (Stripe's, payment-svc's, order-svc's):
the identity of a request body, and one lock per key so a concurrent retry waits for
the first attempt and replays its answer instead of running again."""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

__all__ = ["KeyedLocks", "fingerprint"]


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
