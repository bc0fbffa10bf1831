"""Rate limiting on the ``limits`` library, kept in the component's own Redis.

One code path for both backends: limits' ``RedisStorage`` (redis-py flavour) is built on
the connection pool of ``ctx.redis``, so the counters live next to the rest of the
component's cache, under its key prefix, whether that client is a real Redis or
fakeredis.

The one exception, and why: limits runs every strategy as a Lua script (``EVALSHA``),
and fakeredis implements Lua only when the optional ``lupa`` package is installed (the
``fakeredis[lua]`` extra). Handing limits the fakeredis pool works; its first script
then fails with "unknown command 'evalsha'". So :func:`open_storage` asks the client
to run a one-line script once: when it cannot, and only then, the counters go to
limits' ``MemoryStorage`` in this process, which has the same semantics for a single
in-process gateway. With ``fakeredis[lua]`` among the project's dependencies the
embedded default takes the Redis path too.

Not a simulator module: it defines no :class:`Simulator` subclass, so discovery skips it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

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

__all__ = ["Decision", "RateLimiter", "open_storage", "parse_limit"]

logger = logging.getLogger(__name__)

STRATEGIES: dict[str, Callable[[Storage], Strategy]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}


def parse_limit(text: str) -> RateLimitItem:
    """``"100/minute"`` -> a limits item; a malformed setting fails at start, loudly."""
    item: RateLimitItem = parse(text)
    return item


async def _runs_lua(client: aioredis.Redis) -> bool:
    try:
        await cast(Any, client).eval("return 1", 0)
    except ResponseError:
        return False
    return True


async def open_storage(client: aioredis.Redis, prefix: str) -> Storage:
    """limits' Redis storage on ``client``'s pool, keys under ``prefix``; limits'
    in-process memory storage when ``client`` cannot run Lua (see the module doc)."""
    if await _runs_lua(client):
        # limits types its pass-through options as scalars; a pool is what redis-py takes
        options: dict[str, Any] = {"connection_pool": client.connection_pool}
        return RedisStorage(
            "async+redis://", implementation="redispy", key_prefix=prefix, **options
        )
    logger.info("%s: this Redis runs no Lua; rate-limit counters kept in process", prefix)
    return MemoryStorage()


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

    async def hit(self, item: RateLimitItem, *identifiers: str) -> Decision:
        """Count one request against ``item`` for ``identifiers`` (e.g. "user", id)."""
        allowed = await self._strategy.hit(item, *identifiers)
        stats = await self._strategy.get_window_stats(item, *identifiers)
        wait = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, max(0, stats.remaining), wait)

    async def reset(self) -> None:
        """Forget every counter (between scenarios)."""
        await self.storage.reset()
