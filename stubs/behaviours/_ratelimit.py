"""Rate limiting on the ``limits`` library, kept in the component's own Redis.

On a real Redis, limits' ``RedisStorage`` (redis-py flavour) is built on the connection
pool of ``ctx.redis``, so the counters live next to the rest of the component's cache,
under its key prefix.

Where the counters are kept in this process instead: limits runs every strategy as a
Lua script (``EVALSHA``). On a real Redis that is one round trip; fakeredis interprets
each script through lupa, which cost the mesh about 7% of its event loop under load
(py-spy, issue 15) for counters no other process can see anyway. So on fakeredis (and on
a Redis that cannot run Lua) the counters go to limits' ``MemoryStorage``: the same
strategies and windows, for the one gateway in this process. A real Redis URL keeps
them in Redis, shared with whoever else counts there.

limits' ``MemoryStorage`` sweeps expired entries after every hit, in a task that hands
each key's list to a thread (``asyncio.to_thread``) in turn: with a key per user and per
address that was 7% of the mesh's loop under load (py-spy, issue 15).
:class:`LoopMemoryStorage` sweeps on the loop's own thread, at most once a second; the
strategies check each entry's age themselves, so sweeping less often only keeps expired
entries in memory a little longer.

Not a simulator module: it defines no :class:`Simulator` subclass, so discovery skips it.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast, overload

import fakeredis
import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import RateLimiter as Strategy
from redis.exceptions import ResponseError

__all__ = ["Decision", "LoopMemoryStorage", "RateLimiter", "open_storage", "parse_limit"]

logger = logging.getLogger(__name__)

STRATEGIES: dict[str, Callable[[Storage], Strategy]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}


def parse_limit(text: str) -> RateLimitItem:
    """``"100/minute"`` -> a limits item; ValueError naming a malformed one (at start,
    loudly, or from whoever changes the limits)."""
    try:
        item: RateLimitItem = parse(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a rate limit (for example 100/minute)") from None
    return item


class LoopMemoryStorage(MemoryStorage):
    """limits' in-process storage, swept on the loop's thread at most every
    ``sweep_interval`` seconds (see the module doc)."""

    sweep_interval = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.swept_at = 0.0  # when the last sweep ran (time.time())

    # limits calls its private sweep scheduler after every hit; this is that method
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.time()
        if now - self.swept_at >= self.sweep_interval:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Drop the entries and counters expired at ``now``. Nothing here awaits, so no
        hit runs in between (limits' per-key locks are only held across awaits)."""
        self.swept_at = now
        for key, events in list(self.events.items()):  # newest first: expiry descending
            kept = events[: bisect.bisect_left(events, -now, key=lambda event: -event.expiry)]
            if kept:
                self.events[key] = kept
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


async def _runs_lua(client: aioredis.Redis) -> bool:
    try:
        await cast(Any, client).eval("return 1", 0)
    except ResponseError:
        return False
    return True


async def open_storage(client: aioredis.Redis, prefix: str) -> Storage:
    """limits' Redis storage on ``client``'s pool, keys under ``prefix``; limits'
    in-process memory storage for fakeredis or a Redis that cannot run Lua (see the
    module doc)."""
    if not isinstance(client, fakeredis.FakeAsyncRedis) and await _runs_lua(client):
        # limits types its pass-through options as scalars; a pool is what redis-py takes
        options: dict[str, Any] = {"connection_pool": client.connection_pool}
        return RedisStorage(
            "async+redis://", implementation="redispy", key_prefix=prefix, **options
        )
    logger.info("%s: rate-limit counters kept in this process (embedded Redis)", prefix)
    return LoopMemoryStorage()


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit: allowed or not, and what the client is told about it."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds until the window lets a request through; 0 if allowed

    def headers(self) -> dict[str, str]:
        found = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            found["Retry-After"] = str(self.retry_after)
        return found


class RateLimiter:
    """A limits strategy (``moving-window``, ``fixed-window``, ``sliding-window-counter``)
    over one storage.

    Windows follow the wall clock (limits reads ``time.time()`` itself), not the
    simulator's clock: a test that moves ``ctx.clock`` does not move these windows.
    """

    def __init__(self, storage: Storage, strategy: str = "moving-window"):
        if strategy not in STRATEGIES:
            known = ", ".join(sorted(STRATEGIES))
            raise ValueError(f"unknown rate_limit_strategy '{strategy}' (known: {known})")
        self.storage = storage
        self._strategy = STRATEGIES[strategy](storage)

    @overload
    async def hit(
        self, item: RateLimitItem, *identifiers: str, quiet: Literal[False] = False
    ) -> Decision: ...

    @overload
    async def hit(self, item: RateLimitItem, *identifiers: str, quiet: bool) -> Decision | None: ...

    async def hit(
        self, item: RateLimitItem, *identifiers: str, quiet: bool = False
    ) -> Decision | None:
        """Count one request against ``item`` for ``identifiers`` (e.g. "user", id).

        ``quiet``: None when allowed, without reading the window for the caller's
        ``X-RateLimit-*`` headers -- a second round trip to Redis, for a limit whose
        headers are told only when it refuses (the gateway's per-IP one, issue 15)."""
        allowed = await self._strategy.hit(item, *identifiers)
        if allowed and quiet:
            return None
        stats = await self._strategy.get_window_stats(item, *identifiers)
        wait = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, max(0, stats.remaining), wait)

    async def reset(self) -> None:
        """Forget every counter (between scenarios)."""
        await self.storage.reset()
